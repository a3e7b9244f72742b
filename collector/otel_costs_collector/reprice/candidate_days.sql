-- The calls a re-price considers (reprice/prices.py says which), counted per UTC day.
SELECT toDate(timestamp) AS day, count() AS calls
FROM {db}.genai_spans
WHERE timestamp >= {start:DateTime64(9, 'UTC')} AND timestamp < {end:DateTime64(9, 'UTC')}
  AND has({statuses:Array(String)}, pricing_status) AND cost_source != 'provider'
  AND ({model:String} = '' OR if(response_model != '', response_model, request_model) = {model:String})
GROUP BY day
ORDER BY day
