-- Revenue per tenant, plan, currency and UTC day: each line's newest version only (a re-pull
-- or re-import replaces a line whole), lines that still count (active); one tenant's when
-- {every} is 0.
SELECT tenant_id, plan, currency, day, sum(amount)
FROM {db}.revenue_daily
WHERE day >= {start:Date} AND day < {end:Date}
  AND active = 1
  AND ({every:UInt8} = 1 OR tenant_id = {tenant:String})
  AND (source, line_id, version) IN (
      SELECT source, line_id, max(version) FROM {db}.revenue_daily GROUP BY source, line_id
  )
GROUP BY tenant_id, plan, currency, day
ORDER BY day, tenant_id, plan, currency
