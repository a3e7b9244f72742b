-- Spend per UTC hour and scope value ({value}: a column of the hourly rollups from a fixed
-- allowlist, or '' for the total), over the detector's history.
SELECT hour, {value} AS value, sum(cost_total)
FROM {db}.genai_costs_hourly
WHERE hour >= {since:DateTime} AND hour < {end:DateTime}
GROUP BY hour, value
