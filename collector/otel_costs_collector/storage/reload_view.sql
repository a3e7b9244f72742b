-- A materialized view detached and attached again, as a restart would load it (schema.py says why).
DETACH TABLE {db}.{view} {on_cluster} SYNC;
ATTACH TABLE {db}.{view} {on_cluster};
