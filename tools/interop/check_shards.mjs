#!/usr/bin/env node
// check_shards.mjs — read a streaming dataset's Parquet shards with DuckDB (an
// independent Parquet reader) and print a small JSON summary on stdout:
//
//   {"rows":N,"labels":{"0":n,...},"first_image":{"format":"png","width":28,"height":28}}
//
// Usage: node check_shards.mjs <dataset-dir>
//
// - Reads <dir>/*.parquet (expects columns `image` BLOB and `label` integer;
//   NULL labels, i.e. unlabeled rows, are counted under the key "null").
// - "First image" = row 0 of the first shard in file-name order.
// - Exit codes: 0 ok; 1 usage / no parquet files / query error;
//   2 first image is not a PNG (or its IHDR chunk is malformed).
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function fail(code, message) {
  process.stderr.write(`check_shards: ${message}\n`);
  process.exit(code);
}

function sqlString(s) {
  return `'${s.replaceAll("'", "''")}'`;
}

function sniff(bytes) {
  if (bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return 'unknown';
}

async function main() {
  const dirArg = process.argv[2];
  if (!dirArg || dirArg === '-h' || dirArg === '--help') {
    fail(1, 'usage: node check_shards.mjs <dataset-dir>');
  }
  const dir = path.resolve(dirArg);
  let entries;
  try {
    if (!statSync(dir).isDirectory()) fail(1, `not a directory: ${dir}`);
    entries = readdirSync(dir);
  } catch (e) {
    fail(1, `cannot read directory ${dir}: ${e.message}`);
  }
  if (!entries.some((n) => n.endsWith('.parquet'))) {
    fail(1, `no *.parquet files in ${dir}`);
  }

  // DuckDB globs use forward slashes on every platform.
  const glob = sqlString(path.join(dir, '*.parquet').split(path.sep).join('/'));
  const src = `read_parquet(${glob}, filename = true, file_row_number = true)`;

  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  const result = { rows: 0, labels: {}, first_image: null };
  let exitCode = 0;
  try {
    const rowsReader = await conn.runAndReadAll(`SELECT count(*) AS n FROM ${src}`);
    result.rows = Number(rowsReader.getRowObjects()[0].n);

    const histReader = await conn.runAndReadAll(
      `SELECT label, count(*) AS n FROM ${src} GROUP BY label ORDER BY label NULLS LAST`);
    for (const row of histReader.getRowObjects()) {
      const key = row.label === null ? 'null' : String(row.label);
      result.labels[key] = Number(row.n);
    }

    const firstReader = await conn.runAndReadAll(
      `SELECT image FROM ${src} ORDER BY filename, file_row_number LIMIT 1`);
    const firstRows = firstReader.getRowObjects();
    if (firstRows.length > 0) {
      const blob = firstRows[0].image;
      const bytes = blob === null ? new Uint8Array(0) : blob.bytes;
      const format = sniff(bytes);
      const info = { format, width: null, height: null };
      if (format === 'png') {
        // IHDR must be the first chunk: length(4) type(4)="IHDR" width(4) height(4).
        const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        const chunkType = String.fromCharCode(...bytes.subarray(12, 16));
        if (bytes.length < 24 || chunkType !== 'IHDR') {
          process.stderr.write('check_shards: first image has a PNG signature but no IHDR chunk\n');
          exitCode = 2;
        } else {
          info.width = view.getUint32(16, false);
          info.height = view.getUint32(20, false);
        }
      } else {
        process.stderr.write(`check_shards: first image is not a PNG (detected: ${format})\n`);
        exitCode = 2;
      }
      result.first_image = info;
    }
  } catch (e) {
    fail(1, `query failed: ${e.message}`);
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exitCode = exitCode;
}

await main();
