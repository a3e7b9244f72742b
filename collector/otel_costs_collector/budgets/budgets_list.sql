-- Current budgets: the newest row per id, without deleted ones. (Aliases differ from the
-- column names: ClickHouse would otherwise read the alias inside the aggregate.)
SELECT id, b_tenant, b_user, b_feature, b_amount, b_period, b_timezone, b_hard, b_thresholds, b_max_ratio
FROM (
    SELECT
        id,
        argMax(tenant_id, updated_at) AS b_tenant,
        argMax(user_id, updated_at) AS b_user,
        argMax(feature, updated_at) AS b_feature,
        argMax(amount_usd, updated_at) AS b_amount,
        argMax(period, updated_at) AS b_period,
        argMax(timezone, updated_at) AS b_timezone,
        argMax(hard, updated_at) AS b_hard,
        argMax(thresholds, updated_at) AS b_thresholds,
        argMax(max_ratio, updated_at) AS b_max_ratio,
        argMax(deleted, updated_at) AS b_deleted
    FROM {db}.budgets
    GROUP BY id
)
WHERE b_deleted = 0
ORDER BY id
