package dolphin.grid;

import com.hazelcast.map.EntryProcessor;
import com.hazelcast.nio.ObjectDataInput;
import com.hazelcast.nio.ObjectDataOutput;
import com.hazelcast.nio.serialization.IdentifiedDataSerializable;
import com.hazelcast.nio.serialization.genericrecord.GenericRecord;
import com.hazelcast.nio.serialization.genericrecord.GenericRecordBuilder;

import java.io.IOException;
import java.util.Map;

/**
 * Applies the ACB v6 cut atomically on the member that owns the key.
 *
 * <p>Input: the stress-signal intensities, their weights and the observation time. The entry's
 * new value is a Compact record {@code dolphin.AcbState} (stress_count, cut_frac, version,
 * ts_ns) whose version is the previous version plus one; the processor returns the cut
 * fraction. Hazelcast runs it on the partition thread that owns the key, so two concurrent
 * updates never interleave, and the same processor (deterministic: no clock, no randomness)
 * runs on the backup replica.
 */
public final class AcbEntryProcessor
        implements EntryProcessor<Object, Object, Double>, IdentifiedDataSerializable {

    /** Compact type name; must equal {@code dolphin.grid.acb.ACB_STATE_TYPE_NAME}. */
    public static final String STATE_TYPE_NAME = "dolphin.AcbState";

    private double[] signals = new double[0];
    private double[] weights = new double[0];
    private long tsNs;

    public AcbEntryProcessor() {
    }

    public AcbEntryProcessor(double[] signals, double[] weights, long tsNs) {
        this.signals = signals;
        this.weights = weights;
        this.tsNs = tsNs;
    }

    @Override
    public Double process(Map.Entry<Object, Object> entry) {
        double count = AcbCut.stressCount(signals, weights);
        double cut = AcbCut.cutFrac(count);
        long version = 1L;
        Object old = entry.getValue();
        if (old instanceof GenericRecord) {
            GenericRecord rec = (GenericRecord) old;
            if (rec.getFieldKind("version") == com.hazelcast.nio.serialization.FieldKind.INT64) {
                version = rec.getInt64("version") + 1L;
            }
        }
        GenericRecord state = GenericRecordBuilder.compact(STATE_TYPE_NAME)
                .setFloat64("stress_count", count)
                .setFloat64("cut_frac", cut)
                .setInt64("version", version)
                .setInt64("ts_ns", tsNs)
                .build();
        entry.setValue(state);
        return cut;
    }

    @Override
    public int getFactoryId() {
        return GridDataSerializableFactory.FACTORY_ID;
    }

    @Override
    public int getClassId() {
        return GridDataSerializableFactory.ACB_PROCESSOR_CLASS_ID;
    }

    @Override
    public void writeData(ObjectDataOutput out) throws IOException {
        out.writeDoubleArray(signals);
        out.writeDoubleArray(weights);
        out.writeLong(tsNs);
    }

    @Override
    public void readData(ObjectDataInput in) throws IOException {
        signals = in.readDoubleArray();
        weights = in.readDoubleArray();
        tsNs = in.readLong();
    }
}
