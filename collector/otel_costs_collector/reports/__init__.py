"""Reading costs: the report query, its JSON API and its rendering (table, CSV, JSON)."""
