-- Page sharing columns, for databases whose projection table predates them (a new database gets
-- them from the projection DDL, which runs after the hub's migrations).
ALTER TABLE IF EXISTS oracle_canvas_pages ADD COLUMN IF NOT EXISTS sharing text;
ALTER TABLE IF EXISTS oracle_canvas_pages ADD COLUMN IF NOT EXISTS editors jsonb;
ALTER TABLE IF EXISTS oracle_canvas_pages ADD COLUMN IF NOT EXISTS viewers jsonb;
