-- Every span of a batch file (collector/otlp_batch.proto) with its position (request,
-- resource, scope, span; 1-based), its request's fields, and its own and its resource's
-- attributes as arrays: what collector/sql_mapping.py's columns read. {batch:String} is
-- the batch file; $structure the columns ClickHouse reads from it.
SELECT
    otel_costs_request_no AS request_no, otel_costs_tenant AS tenant,
    otel_costs_tenant_forced AS tenant_forced, otel_costs_token AS token,
    rs_i, ss_i, sp_i, span,
    span.attributes.key AS keys, span.attributes.value AS vals,
    rs.resource.attributes.key AS rkeys, rs.resource.attributes.value AS rvals
FROM file({batch:String}, 'Protobuf', '$structure')
ARRAY JOIN resource_spans AS rs, arrayEnumerate(resource_spans) AS rs_i
ARRAY JOIN rs.scope_spans AS ss, arrayEnumerate(rs.scope_spans) AS ss_i
ARRAY JOIN ss.spans AS span, arrayEnumerate(ss.spans) AS sp_i
