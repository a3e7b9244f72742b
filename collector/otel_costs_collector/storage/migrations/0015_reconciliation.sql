-- The providers' own cost reports (collector/reconcile). Every pull writes each day it read
-- in full: its billed lines and one marker row (line = '', amount 0) so a day billed nothing
-- is known to be pulled. Readers take, per provider and day, the rows of the newest pull
-- only, so a later pull replaces a day as a whole and concurrent pulls never mix.
CREATE TABLE IF NOT EXISTS {db}.provider_costs{local} {on_cluster}
(
    provider    LowCardinality(String),
    day         Date,
    pull_id     String,
    pulled_at   DateTime64(6, 'UTC'),
    line        String,                  -- the provider's line item or description
    model       LowCardinality(String),  -- genai-prices' id of the model it names, or ''
    amount_usd  Decimal(38, 18)
)
ENGINE = {engine:MergeTree:provider_costs}
ORDER BY (provider, day, pulled_at, pull_id);

{distributed:provider_costs}

-- One row per provider and UTC day whose capture rate left the band (delivered = 0), and
-- again once the webhook took it (delivered = 1): a restart never fires one twice.
CREATE TABLE IF NOT EXISTS {db}.reconcile_alerts{local} {on_cluster}
(
    provider      LowCardinality(String),
    day           Date,
    billed_usd    Decimal(38, 18),
    tracked_usd   Decimal(38, 18),
    delivered     UInt8,
    updated_at    DateTime64(6, 'UTC')
)
ENGINE = {engine:ReplacingMergeTree:reconcile_alerts}
ORDER BY (provider, day);

{distributed:reconcile_alerts}
