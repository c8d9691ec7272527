package io.candleflow.udfs.binance;

import java.util.Collections;
import java.util.Set;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.connector.file.src.FileSourceSplit;
import org.apache.flink.connector.file.src.reader.BulkFormat;
import org.apache.flink.connector.file.table.factories.BulkReaderFormatFactory;
import org.apache.flink.connector.file.table.format.BulkDecodingFormat;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.factories.DynamicTableFactory;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.utils.LogicalTypeChecks;

/**
 * Format {@code candleflow-binance-trades} of the filesystem connector: its path is a manifest
 * of data.binance.vision trades/aggTrades files (zip or csv), read straight into the candles
 * job (`candleflow backfill`), see {@link BinanceTradesFormat}.
 */
public final class BinanceTradesFormatFactory implements BulkReaderFormatFactory {
  public static final String IDENTIFIER = "candleflow-binance-trades";

  @Override
  public BulkDecodingFormat<RowData> createDecodingFormat(
      DynamicTableFactory.Context context, ReadableConfig formatOptions) {
    return new BulkDecodingFormat<>() {
      @Override
      public BulkFormat<RowData, FileSourceSplit> createRuntimeDecoder(
          DynamicTableSource.Context ctx, DataType physicalDataType) {
        TypeInformation<RowData> type = ctx.createTypeInformation(physicalDataType);
        return new BinanceTradesFormat(
            LogicalTypeChecks.getFieldNames(physicalDataType.getLogicalType()), type);
      }

      @Override
      public ChangelogMode getChangelogMode() {
        return ChangelogMode.insertOnly();
      }
    };
  }

  @Override
  public String factoryIdentifier() {
    return IDENTIFIER;
  }

  @Override
  public Set<ConfigOption<?>> requiredOptions() {
    return Collections.emptySet();
  }

  @Override
  public Set<ConfigOption<?>> optionalOptions() {
    return Collections.emptySet();
  }
}
