-- Re-pricing (collector/reprice): calls priced again with today's price table, without losing
-- what they cost before. cost_versions holds, per re-price run and call, the cost columns
-- before and after (and the rollup keys, so the rollups are corrected by the difference);
-- the raw row is updated in place to the new version and the old one stays here, never
-- deleted by a re-price. reprice_runs and reprice_days journal each run and each UTC day's
-- state (staged, applying, applied, rolled_back) so a collector killed in the middle
-- finishes or rolls back a day on its next start: per day, old or new, never a mix.
CREATE TABLE IF NOT EXISTS {db}.cost_versions{local} {on_cluster}
(
    run_id            String,
    day               Date,
    slice             UInt32,
    trace_id          String,
    span_id           String,
    timestamp         DateTime64(9, 'UTC'),
    copies            UInt32,
    tenant_id         LowCardinality(String),
    feature           LowCardinality(String),
    user_id           String,
    provider          LowCardinality(String),
    model             LowCardinality(String),
    service           LowCardinality(String),
    operation         LowCardinality(String),
    service_version   LowCardinality(String),
    environment       LowCardinality(String),
    old_cost_input        Decimal(38, 18),
    old_cost_output       Decimal(38, 18),
    old_cost_cache_read   Decimal(38, 18),
    old_cost_cache_write  Decimal(38, 18),
    old_cost_web_search   Decimal(38, 18),
    old_cost_adjustment   Decimal(38, 18),
    old_cost_total        Decimal(38, 18),
    old_pricing_status    LowCardinality(String),
    old_pricing_source    LowCardinality(String),
    old_pricing_model     LowCardinality(String),
    old_pricing_error     String,
    old_priced_by         LowCardinality(String),
    old_service_tier      LowCardinality(String),
    new_cost_input        Decimal(38, 18),
    new_cost_output       Decimal(38, 18),
    new_cost_cache_read   Decimal(38, 18),
    new_cost_cache_write  Decimal(38, 18),
    new_cost_web_search   Decimal(38, 18),
    new_cost_adjustment   Decimal(38, 18),
    new_cost_total        Decimal(38, 18),
    new_pricing_status    LowCardinality(String),
    new_pricing_source    LowCardinality(String),
    new_pricing_model     LowCardinality(String),
    new_pricing_error     String,
    new_priced_by         LowCardinality(String),
    new_service_tier      LowCardinality(String)
)
ENGINE = {engine:MergeTree:cost_versions}
PARTITION BY toYYYYMM(day)
ORDER BY (run_id, day, slice, trace_id, span_id);

{distributed:cost_versions}

CREATE TABLE IF NOT EXISTS {db}.reprice_runs{local} {on_cluster}
(
    run_id        String,
    started_at    DateTime64(6, 'UTC'),
    actor         String,
    owner         String,                   -- host:pid of the process running it
    day_from      Date,
    day_to        Date,                     -- inclusive
    model         String,
    only          LowCardinality(String),   -- 'all' or 'unpriced'
    prices        String,                   -- the price table used: genai-prices version, overrides hash
    state         LowCardinality(String),   -- running, done, interrupted, failed
    days          UInt32,
    rows          UInt64,
    kept          UInt64,                   -- rows left as they were (see reprice/prices.py)
    cost_before   Decimal(38, 18),
    cost_after    Decimal(38, 18),
    note          String,
    updated_at    DateTime64(6, 'UTC')
)
ENGINE = {engine:ReplacingMergeTree:reprice_runs}
ORDER BY run_id;

{distributed:reprice_runs}

CREATE TABLE IF NOT EXISTS {db}.reprice_days{local} {on_cluster}
(
    run_id        String,
    day           Date,
    state         LowCardinality(String),   -- staging, staged, applying, applied, rolled_back
    slices        UInt32,
    rows          UInt64,
    cost_before   Decimal(38, 18),
    cost_after    Decimal(38, 18),
    updated_at    DateTime64(6, 'UTC')
)
ENGINE = {engine:ReplacingMergeTree:reprice_days}
ORDER BY (run_id, day);

{distributed:reprice_days}
