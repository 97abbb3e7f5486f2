"""PE feature groups (PE32, PE32+, .NET): EMBER v2's header/section/imports/exports/data-directory
groups, plus .NET (COR20 + metadata root), Rich header, Authenticode and overlay groups.

Importing this module registers, in this fixed order: the "pe" parse step and general fields
(pe_parse, imported first by pe_ember), then pe_header, pe_section, pe_imports, pe_exports,
pe_data_directories (pe_ember), then pe_dotnet, pe_rich, pe_authenticode (pe_extra), then
pe_overlay (pe_overlay).
"""

from __future__ import annotations

from extract.groups import pe_ember, pe_extra, pe_overlay, pe_parse  # noqa: F401  (order above = layout)
