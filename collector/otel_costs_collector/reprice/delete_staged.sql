-- A rolled-back day's staged versions: they were never applied.
DELETE FROM {db}.cost_versions WHERE run_id = {run:String} AND day = {day:Date}
