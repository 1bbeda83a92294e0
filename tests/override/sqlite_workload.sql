-- A generated sqlite3 workload for the preload test: bulk inserts of rows of
-- varied sizes, indexes, joins, sorts, grouped aggregates, updates that grow
-- and shrink rows, deletes, a vacuum and an integrity check.  Everything it
-- prints is deterministic, so the output with litemalloc preloaded must equal
-- the output without it.
PRAGMA cache_size = -65536;
PRAGMA journal_mode = MEMORY;
PRAGMA synchronous = OFF;
CREATE TABLE items(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, body BLOB);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
INSERT INTO items SELECT i, i % 997, 'name-' || (i * 7919 % 200000),
  zeroblob(1 + (i * 31) % 3000) FROM n;
CREATE INDEX items_grp ON items(grp);
CREATE INDEX items_name ON items(name);
CREATE TABLE groups(grp INTEGER PRIMARY KEY, label TEXT);
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 996)
INSERT INTO groups SELECT i, printf('group %04d %s', i, substr(hex(zeroblob(i % 40)), 1, i % 80)) FROM n;
SELECT count(*), sum(length(body)), min(name), max(name) FROM items;
SELECT g.label, count(*), sum(length(i.body)) FROM items i JOIN groups g USING (grp)
  GROUP BY g.grp ORDER BY sum(length(i.body)) DESC, g.grp LIMIT 5;
UPDATE items SET body = zeroblob(length(body) * 2), name = name || '-updated' WHERE id % 3 = 0;
UPDATE items SET body = zeroblob(10) WHERE id % 5 = 0;
DELETE FROM items WHERE id % 7 = 0;
SELECT count(*), sum(length(body)), count(DISTINCT name) FROM items;
SELECT name FROM items ORDER BY name DESC LIMIT 3;
SELECT group_concat(id, ',') FROM (SELECT id FROM items WHERE grp = 42 ORDER BY id LIMIT 20);
VACUUM;
PRAGMA integrity_check;
