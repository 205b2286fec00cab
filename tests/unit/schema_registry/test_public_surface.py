from __future__ import annotations

import featurestore.schema_registry as package


def test_all_is_what_the_package_exports() -> None:
    assert sorted(package.__all__) == sorted(
        [
            "CompatibilityLevel",
            "MemoryRecordLog",
            "ParsedSchema",
            "RecordLog",
            "SchemaRegistry",
            "check_compatibility",
            "create_app",
            "parse_schema",
            "reader_can_read",
            "serve",
        ]
    )
    for name in package.__all__:
        assert getattr(package, name) is not None
