-- When each provider's days from {since} were last pulled.
SELECT provider, day, max(pulled_at)
FROM {db}.provider_costs
WHERE day >= {since:Date}
GROUP BY provider, day
