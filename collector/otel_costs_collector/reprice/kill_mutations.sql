-- Raw-row updates a killed re-price ({run}) left unfinished: stopped, then redone by
-- reprice/run.py. Only that run's: another process's live run keeps its own.
KILL MUTATION WHERE database = {db:String} AND table = 'genai_spans' AND is_done = 0
    AND position(command, concat('reprice_join_', {run:String}, '_')) > 0 SYNC
