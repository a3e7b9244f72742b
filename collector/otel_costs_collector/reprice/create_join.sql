-- A slice's new versions, keyed by call, for the update of the raw rows (joinGet).
CREATE TABLE {join}
(
    trace_id String, span_id String,
    cost_input Decimal(38, 18), cost_output Decimal(38, 18), cost_cache_read Decimal(38, 18),
    cost_cache_write Decimal(38, 18), cost_web_search Decimal(38, 18), cost_adjustment Decimal(38, 18),
    cost_total Decimal(38, 18),
    pricing_status String, pricing_source String, pricing_model String, pricing_error String,
    priced_by String, service_tier String
)
ENGINE = Join(ANY, LEFT, trace_id, span_id)
