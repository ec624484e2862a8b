// Runs SQL statements with DuckDB, in order, and prints the last one's rows as JSON (an array of objects): an
// independent Parquet reader and writer for the tests, as a user's own tools would be.
//   node duckdb_sql.mjs "COPY (SELECT ...) TO 'x.parquet' (FORMAT parquet)" "SELECT * FROM 'x.parquet'"
import { DuckDBInstance } from '@duckdb/node-api';

const statements = process.argv.slice(2);
if (statements.length === 0) {
  console.error('usage: node duckdb_sql.mjs SQL [SQL ...]');
  process.exit(1);
}
const db = await DuckDBInstance.create(':memory:');
const con = await db.connect();
let rows = [];
for (const sql of statements) rows = (await con.runAndReadAll(sql)).getRowObjectsJson();
console.log(JSON.stringify(rows));
