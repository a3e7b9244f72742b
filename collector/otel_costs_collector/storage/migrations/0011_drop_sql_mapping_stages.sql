-- The SQL mapping is retired (the Python mapping is the only one): drop the in-memory
-- stage tables its writers made, one a writer (batch_stage_1 .. batch_stage_16, the most
-- writers a collector runs). They existed on embedded storage only; elsewhere nothing is dropped.
DROP TABLE IF EXISTS {db}.batch_stage;
DROP TABLE IF EXISTS {db}.batch_stage_1;
DROP TABLE IF EXISTS {db}.batch_stage_2;
DROP TABLE IF EXISTS {db}.batch_stage_3;
DROP TABLE IF EXISTS {db}.batch_stage_4;
DROP TABLE IF EXISTS {db}.batch_stage_5;
DROP TABLE IF EXISTS {db}.batch_stage_6;
DROP TABLE IF EXISTS {db}.batch_stage_7;
DROP TABLE IF EXISTS {db}.batch_stage_8;
DROP TABLE IF EXISTS {db}.batch_stage_9;
DROP TABLE IF EXISTS {db}.batch_stage_10;
DROP TABLE IF EXISTS {db}.batch_stage_11;
DROP TABLE IF EXISTS {db}.batch_stage_12;
DROP TABLE IF EXISTS {db}.batch_stage_13;
DROP TABLE IF EXISTS {db}.batch_stage_14;
DROP TABLE IF EXISTS {db}.batch_stage_15;
DROP TABLE IF EXISTS {db}.batch_stage_16;
