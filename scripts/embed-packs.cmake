# Writes a C file that holds each built-in rule pack's YAML text, so the binary and
# conf/rules.d share one source of truth. Called by CMake with -DOUT=... -DPACKS=a.yaml;b.yaml
# and optionally -DTABLE=name (default cfw_builtin_pack_table: the packs rules.builtin can name;
# the daemon's own rules, conf/internal, go to another table that users cannot select).
if(NOT DEFINED TABLE)
    set(TABLE cfw_builtin_pack_table)
endif()
set(body "/* Generated from conf/ by scripts/embed-packs.cmake; do not edit. */\n#include <stddef.h>\n\n")
set(table "")
set(i 0)
foreach(pack ${PACKS})
    get_filename_component(name ${pack} NAME_WE)
    file(READ ${pack} hex HEX)
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
    string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
    string(APPEND body "static const char pack_${i}[] = {\n${bytes}0x00};\n\n")
    string(APPEND table "    {\"${name}\", pack_${i}},\n")
    math(EXPR i "${i} + 1")
endforeach()
string(APPEND body "struct cfw_builtin_pack {\n    const char *name;\n    const char *text;\n};\n\n")
string(APPEND body "extern const struct cfw_builtin_pack ${TABLE}[];\n")
string(APPEND body "const struct cfw_builtin_pack ${TABLE}[] = {\n${table}    {NULL, NULL},\n};\n")
file(WRITE ${OUT}.tmp "${body}")
file(RENAME ${OUT}.tmp ${OUT})
