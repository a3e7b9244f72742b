-- Budgets and the alerts they fired. Every change to a budget is a new row (the newest
-- per id wins, deleted ones included), and so is every change to an alert, so both
-- tables are read with argMax(..., updated_at) GROUP BY key: correct on any engine and
-- across shards. ReplacingMergeTree only compacts the history.
CREATE TABLE IF NOT EXISTS {db}.budgets{local} {on_cluster}
(
    id          String,
    tenant_id   String,   -- '' = any tenant
    user_id     String,   -- '' = any user
    feature     String,   -- '' = any feature
    amount_usd  Decimal(38, 18),
    period      LowCardinality(String),  -- daily, weekly (from Monday), monthly
    timezone    LowCardinality(String),  -- the calendar the period follows
    hard        UInt8,    -- 1: the SDK refuses calls once spent, 0: alert only
    thresholds  Array(UInt16),  -- percent, empty = the collector's default
    deleted     UInt8,
    updated_at  DateTime64(6, 'UTC')
)
ENGINE = {engine:ReplacingMergeTree:budgets}
ORDER BY id;

{distributed:budgets}

-- One row per budget, period and threshold once it is crossed (delivered = 0), and again
-- when the webhook took it (delivered = 1). Kept so a restart never fires one twice.
CREATE TABLE IF NOT EXISTS {db}.budget_alerts{local} {on_cluster}
(
    budget_id     String,
    period_start  DateTime('UTC'),
    threshold     UInt16,
    spend_usd     Decimal(38, 18),
    amount_usd    Decimal(38, 18),
    delivered     UInt8,
    updated_at    DateTime64(6, 'UTC')
)
ENGINE = {engine:ReplacingMergeTree:budget_alerts}
ORDER BY (budget_id, period_start, threshold);

{distributed:budget_alerts}
