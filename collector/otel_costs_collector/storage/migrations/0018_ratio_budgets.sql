-- Budgets on cost-to-revenue (collector/revenue): a budget with max_ratio > 0 caps a tenant's
-- AI cost at that share of its revenue in the period; 0 is a budget in USD (amount_usd).
ALTER TABLE {db}.budgets{local} {on_cluster}
    ADD COLUMN IF NOT EXISTS max_ratio Decimal(38, 18) DEFAULT 0;

ALTER TABLE {db}.budgets {on_cluster}
    ADD COLUMN IF NOT EXISTS max_ratio Decimal(38, 18) DEFAULT 0;
