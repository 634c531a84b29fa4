-- Page sharing columns, for databases whose projection table predates them (a new database gets
-- them from the projection DDL, which runs after the hub's migrations).
ALTER TABLE IF EXISTS oracle_canvas_pages ADD COLUMN IF NOT EXISTS sharing text;
ALTER TABLE IF EXISTS oracle_canvas_pages ADD COLUMN IF NOT EXISTS editors jsonb;
ALTER TABLE IF EXISTS oracle_canvas_pages ADD COLUMN IF NOT EXISTS viewers jsonb;

-- Documents shared by name (canvas pages not shared with the whole tenant): who may read them,
-- now and before their last scope change (NULL: the owner and team rule alone decides).
ALTER TABLE hub_documents ADD COLUMN IF NOT EXISTS readers text[];
ALTER TABLE hub_documents ADD COLUMN IF NOT EXISTS prev_readers text[];
