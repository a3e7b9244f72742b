-- What customers pay (collector/revenue): one row per revenue line and UTC day of its service
-- period, holding that day's share of the line (revenue/lines.py spreads it). A line is a
-- Stripe invoice line, a Stripe credit note line (negative) or an imported line, identified by
-- (source, line_id). Every write of a line writes all its days under a newer version;
-- readers take each line's newest version only, so a re-pull or a re-import replaces a line
-- as a whole and nothing is counted twice. A line that stopped counting (a voided invoice)
-- is written again with active = 0.
CREATE TABLE IF NOT EXISTS {db}.revenue_daily{local} {on_cluster}
(
    source        LowCardinality(String),   -- 'stripe' or 'import'
    line_id       String,
    version       DateTime64(6, 'UTC'),
    day           Date,
    tenant_id     String,
    plan          String,
    customer      String,
    currency      LowCardinality(String),   -- ISO 4217, upper case
    amount        Decimal(38, 18),          -- this day's share, in the currency's major unit
    line_amount   Decimal(38, 18),          -- the whole line
    period_start  DateTime('UTC'),
    period_end    DateTime('UTC'),
    active        UInt8
)
ENGINE = {engine:MergeTree:revenue_daily}
ORDER BY (source, line_id, version, day);

{distributed:revenue_daily}
