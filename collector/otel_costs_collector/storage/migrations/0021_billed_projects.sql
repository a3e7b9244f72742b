-- OpenAI's cost report grouped by project as well as line item (collector/reconcile): a
-- project's bill beside the tracked cost of the services or tenants that use its key. ''
-- for lines pulled before, and for providers that give no project.
ALTER TABLE {db}.provider_costs{local} {on_cluster}
    ADD COLUMN IF NOT EXISTS project String DEFAULT '';

ALTER TABLE {db}.provider_costs {on_cluster}
    ADD COLUMN IF NOT EXISTS project String DEFAULT '';
