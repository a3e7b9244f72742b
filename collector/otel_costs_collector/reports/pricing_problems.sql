-- The counted calls of a report's range and filters that carry no cost, by why: a model with
-- no known price (unpriced), usage that could not be read (invalid_usage), a response not
-- read to its end (incomplete). A few models and one reason each, for the reader.
SELECT pricing_status, count() AS calls,
       arraySort(groupUniqArray(5)(if(response_model != '', response_model, request_model))) AS models,
       any(pricing_error) AS example
FROM {db}.genai_spans
WHERE timestamp >= {start:DateTime64(9, 'UTC')} AND timestamp < {end:DateTime64(9, 'UTC')}
  AND pricing_status NOT IN ('priced', 'overridden') AND pricing_status NOT IN {not_counted} {filters}
GROUP BY pricing_status
ORDER BY calls DESC
