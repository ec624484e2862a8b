// Reads a `streaming features` file with DuckDB, as an independent check that its LIST column is a standard one:
//   node check_features.mjs FEATURES.parquet
// Prints JSON: rows, labeled rows, the shortest and longest feature lists, the first id and the sum of its features.
import { DuckDBInstance } from '@duckdb/node-api';

const [file] = process.argv.slice(2);
if (!file) {
  console.error('usage: node check_features.mjs FEATURES.parquet');
  process.exit(1);
}
const db = await DuckDBInstance.create(':memory:');
const con = await db.connect();
const src = `read_parquet('${file.replaceAll("'", "''")}')`;
// "First" is the file's first row: DuckDB keeps a file's row order (preserve_insertion_order, on by default).
const sql = `
  WITH t AS (SELECT *, row_number() OVER () AS n FROM ${src})
  SELECT count(*) AS rows, count(label) AS labeled, min(len(features)) AS min_dim, max(len(features)) AS max_dim,
         (SELECT id FROM t WHERE n = 1) AS first_id, (SELECT list_sum(features) FROM t WHERE n = 1) AS first_sum
  FROM t`;
const reader = await con.runAndReadAll(sql);
console.log(JSON.stringify(reader.getRowObjectsJson()[0]));
