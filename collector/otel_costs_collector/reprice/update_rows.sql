-- The raw rows of one slice of one day set to their new version. Idempotent: run again after a
-- crash, it sets the same values. Rows stored after the slice was staged are not in it.
ALTER TABLE {db}.genai_spans
UPDATE
    cost_input = joinGet({join:String}, 'cost_input', trace_id, span_id),
    cost_output = joinGet({join:String}, 'cost_output', trace_id, span_id),
    cost_cache_read = joinGet({join:String}, 'cost_cache_read', trace_id, span_id),
    cost_cache_write = joinGet({join:String}, 'cost_cache_write', trace_id, span_id),
    cost_web_search = joinGet({join:String}, 'cost_web_search', trace_id, span_id),
    cost_adjustment = joinGet({join:String}, 'cost_adjustment', trace_id, span_id),
    cost_total = joinGet({join:String}, 'cost_total', trace_id, span_id),
    pricing_status = joinGet({join:String}, 'pricing_status', trace_id, span_id),
    pricing_source = joinGet({join:String}, 'pricing_source', trace_id, span_id),
    pricing_model = joinGet({join:String}, 'pricing_model', trace_id, span_id),
    pricing_error = joinGet({join:String}, 'pricing_error', trace_id, span_id),
    priced_by = joinGet({join:String}, 'priced_by', trace_id, span_id),
    service_tier = joinGet({join:String}, 'service_tier', trace_id, span_id)
WHERE timestamp >= {start:DateTime64(9, 'UTC')} AND timestamp < {end:DateTime64(9, 'UTC')}
  AND (trace_id, span_id) IN (
      SELECT trace_id, span_id FROM {db}.cost_versions
      WHERE run_id = {run:String} AND day = {day:Date} AND slice = {slice:UInt32})
