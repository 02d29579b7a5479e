package dolphin.grid;

import com.hazelcast.nio.serialization.DataSerializableFactory;
import com.hazelcast.nio.serialization.IdentifiedDataSerializable;

/**
 * Creates dolphin's server-side objects by class id. Registered in the member configuration
 * under {@code serialization.data-serializable-factories} with {@link #FACTORY_ID}; the Python
 * client sends objects with the same factory and class ids ({@code dolphin.grid.acb}).
 */
public final class GridDataSerializableFactory implements DataSerializableFactory {

    /** Must equal {@code dolphin.grid.acb.GRID_FACTORY_ID}. */
    public static final int FACTORY_ID = 1701;

    /** Must equal {@code dolphin.grid.acb.ACB_PROCESSOR_CLASS_ID}. */
    public static final int ACB_PROCESSOR_CLASS_ID = 1;

    @Override
    public IdentifiedDataSerializable create(int typeId) {
        if (typeId == ACB_PROCESSOR_CLASS_ID) {
            return new AcbEntryProcessor();
        }
        throw new IllegalArgumentException("unknown dolphin grid class id " + typeId);
    }
}
