// Commits upsert snapshots to an Iceberg table with the shape of Flink's upsert sink: per
// commit, one data file with the new rows and one equality-delete file on the table's
// identifier fields, in a RowDelta (IcebergFilesCommitter's commit of an upsert checkpoint).
//
// Test and bench data only (tests/lakehouse, bench/maintenance): a real Flink job commits
// one snapshot per checkpoint, which makes 1,000 snapshots cost 1,000 checkpoints; this
// writes the same files through Iceberg's own writers and catalog in a fraction of that.
//
// Run with Java 17's source launcher on the stack's Iceberg jars (no build step):
//   java -cp <jars/flink/*> UpsertCommits.java CATALOG_URI WAREHOUSE NS.TABLE COMMITS FIRST
//        ROWS_PER_COMMIT REVISIONS_PER_WINDOW [PAUSE_MS]
// Commit i (FIRST <= i < FIRST + COMMITS) upserts ROWS_PER_COMMIT candles (one per symbol)
// of the 1-minute window i / REVISIONS_PER_WINDOW, revision i % REVISIONS_PER_WINDOW: a
// window is rewritten REVISIONS_PER_WINDOW times, its last revision wins. Prints one line
// "commit <i> <snapshot-id> <timestamp-ms>" per commit.

import java.math.BigDecimal;
import java.time.LocalDateTime;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.iceberg.DataFile;
import org.apache.iceberg.DeleteFile;
import org.apache.iceberg.FileFormat;
import org.apache.iceberg.PartitionKey;
import org.apache.iceberg.Schema;
import org.apache.iceberg.Table;
import org.apache.iceberg.catalog.TableIdentifier;
import org.apache.iceberg.data.GenericAppenderFactory;
import org.apache.iceberg.data.GenericRecord;
import org.apache.iceberg.data.InternalRecordWrapper;
import org.apache.iceberg.data.Record;
import org.apache.iceberg.deletes.EqualityDeleteWriter;
import org.apache.iceberg.io.DataWriter;
import org.apache.iceberg.io.OutputFileFactory;
import org.apache.iceberg.jdbc.JdbcCatalog;
import org.apache.iceberg.types.TypeUtil;
import org.apache.iceberg.types.Types;

public class UpsertCommits {
  static final LocalDateTime DAY = LocalDateTime.of(2026, 11, 2, 0, 0);

  public static void main(String[] args) throws Exception {
    JdbcCatalog catalog = new JdbcCatalog();
    Map<String, String> props = new HashMap<>();
    props.put("uri", args[0]);
    props.put("warehouse", args[1]);
    props.put("jdbc.schema-version", "V1");
    catalog.setConf(new org.apache.hadoop.conf.Configuration());
    catalog.initialize("candleflow", props);
    Table table = catalog.loadTable(TableIdentifier.parse(args[2]));
    int commits = Integer.parseInt(args[3]);
    int first = Integer.parseInt(args[4]);
    int rows = Integer.parseInt(args[5]);
    int revisions = Integer.parseInt(args[6]);
    long pauseMs = args.length > 7 ? Long.parseLong(args[7]) : 0;

    Schema schema = table.schema();
    int[] keyIds = schema.identifierFieldIds().stream().mapToInt(Integer::intValue).toArray();
    Schema keySchema = TypeUtil.select(schema, schema.identifierFieldIds());
    GenericAppenderFactory factory =
        new GenericAppenderFactory(schema, table.spec(), keyIds, keySchema, null);
    OutputFileFactory files =
        OutputFileFactory.builderFor(table, 1, System.nanoTime()).format(FileFormat.PARQUET).build();
    InternalRecordWrapper wrapper = new InternalRecordWrapper(schema.asStruct());

    for (int i = first; i < first + commits; i++) {
      List<Record> batch = new java.util.ArrayList<>();
      for (int s = 0; s < rows; s++) {
        batch.add(candle(schema, s, i / revisions, i % revisions));
      }
      PartitionKey partition = new PartitionKey(table.spec(), schema);
      partition.partition(wrapper.wrap(batch.get(0)));

      DataWriter<Record> data =
          factory.newDataWriter(files.newOutputFile(partition), FileFormat.PARQUET, partition);
      EqualityDeleteWriter<Record> deletes =
          factory.newEqDeleteWriter(files.newOutputFile(partition), FileFormat.PARQUET, partition);
      try (data; deletes) {
        for (Record r : batch) {
          deletes.write(r.copy(keyValues(keySchema, r)));
          data.write(r);
        }
      }
      DataFile dataFile = data.toDataFile();
      DeleteFile deleteFile = deletes.toDeleteFile();
      table.newRowDelta().addRows(dataFile).addDeletes(deleteFile)
          .set("candleflow.upsert-commit", Integer.toString(i)).commit();
      System.out.println(
          "commit " + i + " " + table.currentSnapshot().snapshotId() + " "
              + table.currentSnapshot().timestampMillis());
      System.out.flush();
      if (pauseMs > 0) {
        Thread.sleep(pauseMs);
      }
    }
    catalog.close();
  }

  static Map<String, Object> keyValues(Schema keySchema, Record r) {
    Map<String, Object> values = new HashMap<>();
    for (Types.NestedField f : keySchema.columns()) {
      values.put(f.name(), r.getField(f.name()));
    }
    return values;
  }

  /** The candle of symbol s, 1-minute window w, at revision rev (values derived from all three). */
  static Record candle(Schema schema, int s, int w, int rev) {
    GenericRecord r = GenericRecord.create(schema);
    LocalDateTime start = DAY.plusMinutes(w);
    BigDecimal price = new BigDecimal(100 + s).add(new BigDecimal(w).movePointLeft(2))
        .add(new BigDecimal(rev).movePointLeft(6)).setScale(18);
    for (Types.NestedField f : schema.columns()) {
      String n = f.name();
      Object v;
      switch (n) {
        case "exchange": v = "binance"; break;
        case "symbol": v = "SYM" + s + "-USDT"; break;
        case "interval": v = "1m"; break;
        case "window_start": v = start; break;
        case "window_end": v = start.plusMinutes(1); break;
        case "revision": v = rev; break;
        case "is_empty": v = false; break;
        default:
          switch (f.type().typeId()) {
            case DECIMAL: v = price; break;
            case LONG: v = (long) (w * 1000 + rev); break;
            case INTEGER: v = rev; break;
            case STRING: v = n; break;
            case BOOLEAN: v = false; break;
            case TIMESTAMP: v = start; break;
            default: throw new IllegalArgumentException("no value for " + n + " " + f.type());
          }
      }
      r.setField(n, v);
    }
    return r;
  }
}
