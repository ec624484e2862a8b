// Compares two `streaming score` outputs with DuckDB (which also shows that score shards read as lists):
//   node compare_scores.mjs SCORES_A SCORES_B
// Prints JSON: rows in each, rows joined on id, how many top-1 classes differ, the largest |prob| difference
// at each rank, and whether the class lists are equal everywhere.
import { DuckDBInstance } from '@duckdb/node-api';

const [a, b] = process.argv.slice(2);
if (!a || !b) {
  console.error('usage: node compare_scores.mjs SCORES_A SCORES_B');
  process.exit(1);
}
const db = await DuckDBInstance.create(':memory:');
const con = await db.connect();
const src = (d) => `read_parquet('${d.replaceAll("'", "''")}/scores/*.parquet')`;
const sql = `
  WITH x AS (SELECT * FROM ${src(a)}), y AS (SELECT * FROM ${src(b)})
  SELECT (SELECT count(*) FROM x) AS rows_a, (SELECT count(*) FROM y) AS rows_b, count(*) AS joined,
         sum(CASE WHEN x.classes[1] <> y.classes[1] THEN 1 ELSE 0 END) AS top1_differs,
         sum(CASE WHEN x.classes <> y.classes THEN 1 ELSE 0 END) AS class_lists_differ,
         max(abs(x.probs[1] - y.probs[1])) AS max_diff_rank1,
         max(list_max(list_transform(list_zip(x.probs, y.probs), p -> abs(p[1] - p[2])))) AS max_diff_any_rank
  FROM x JOIN y USING (id)`;
const reader = await con.runAndReadAll(sql);
const row = reader.getRowObjectsJson()[0];
console.log(JSON.stringify(row));
