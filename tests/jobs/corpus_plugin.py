"""A test-only contract plugin (``BINFEAT_CONTRACT_PLUGIN=tests.jobs.corpus_plugin:bumped``).

It adds one column to extract's contract and suffixes the feature version, as a new feature group
would: the schema-evolution test's bump. ``probe`` runs on the executors (pickled by reference).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from jobs.corpus.extraction import Contract

PROBE = pa.field("plugin_probe", pa.struct([("size_mod_7", pa.int64()), ("is_ok", pa.bool_())]))
SUFFIX = "+probe1"


def probe(table: pa.Table) -> pa.Table:
    size = table.column("size")
    value = pa.StructArray.from_arrays(
        [pc.cast(pc.subtract(size, pc.multiply(pc.divide(size, 7), 7)), pa.int64()).combine_chunks(),
         pc.equal(table.column("status"), "ok").combine_chunks()],
        fields=list(PROBE.type),
    )  # fmt: skip
    i = table.schema.get_field_index("feature_version")
    bumped_version = pc.binary_join_element_wise(table.column("feature_version"), SUFFIX, "")
    table = table.set_column(i, table.schema.field(i), bumped_version)
    return table.append_column(PROBE, value)


def bumped(base: Contract) -> Contract:
    return Contract(base.feature_version + SUFFIX, base.schema.append(PROBE), base.layout, transform=probe)
