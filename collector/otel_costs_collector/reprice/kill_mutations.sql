-- Raw-row updates a killed re-price left unfinished: stopped, then redone by reprice/run.py.
KILL MUTATION WHERE database = {db:String} AND table = 'genai_spans' AND command LIKE '%reprice_join_%' AND is_done = 0 SYNC
