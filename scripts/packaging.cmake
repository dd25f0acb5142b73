# Packaging: man pages, the /etc layout of a /usr install, and the Debian package (CPack DEB).
# Included at the end of the top-level CMakeLists.txt, after the install rules for the binary,
# the configuration, the rules, the unit and the docs.
#
#   cmake --build build && cpack --config build/CPackConfig.cmake -G DEB -B build/pkg
#
# gives build/pkg/cfwatchd_<version>-1_<arch>.deb, which `apt-get install ./cfwatchd_*.deb`
# installs on Debian 12; its Depends: come from dpkg-shlibdeps.

# ---- man pages: compressed at build time (Debian policy: gzip -9n), installed by section ----

find_program(CFW_GZIP gzip REQUIRED)
set(CFW_MAN_PAGES ${CMAKE_SOURCE_DIR}/docs/cfwatchd.8 ${CMAKE_SOURCE_DIR}/docs/cfwatchd.yaml.5)
set(CFW_MAN_OUT)
foreach(page ${CFW_MAN_PAGES})
    get_filename_component(name ${page} NAME)
    string(REGEX MATCH "[0-9]$" section ${name})
    set(out ${CMAKE_BINARY_DIR}/man/${name}.gz)
    add_custom_command(
        OUTPUT ${out}
        COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
        COMMAND ${CFW_GZIP} -9nc ${page} > ${out}
        DEPENDS ${page}
        COMMENT "Compressing man page ${name}"
        VERBATIM)
    list(APPEND CFW_MAN_OUT ${out})
    install(FILES ${out} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
add_custom_target(cfwatchd_man ALL DEPENDS ${CFW_MAN_OUT})

# Secrets for LoadCredential= (see systemd/cfwatchd.service): an empty root-only directory.
install(DIRECTORY DESTINATION ${CMAKE_INSTALL_SYSCONFDIR}/cfwatchd/credentials
        DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE)

# ---- the Debian package ----

set(CFW_PKG_DIR ${CMAKE_BINARY_DIR}/packaging)
file(MAKE_DIRECTORY ${CFW_PKG_DIR})

# Every file shipped under /etc is a conffile: dpkg keeps local changes on upgrade and asks.
file(GLOB CFW_PKG_RULES CONFIGURE_DEPENDS RELATIVE ${CMAKE_SOURCE_DIR}/conf/rules.d
     ${CMAKE_SOURCE_DIR}/conf/rules.d/*)
list(SORT CFW_PKG_RULES)
set(CFW_CONFFILES "/etc/cfwatchd/cfwatchd.yaml\n")
foreach(f ${CFW_PKG_RULES})
    string(APPEND CFW_CONFFILES "/etc/cfwatchd/rules.d/${f}\n")
endforeach()
file(CONFIGURE OUTPUT ${CFW_PKG_DIR}/conffiles CONTENT "${CFW_CONFFILES}")

# Maintainer scripts. The unit is not enabled or started on a first install: the example
# configuration watches a placeholder path and has no receiver, so the operator configures
# sources, sinks and credentials first, then runs `systemctl enable --now cfwatchd`. An upgrade
# restarts a running service. Every systemctl call is skipped when systemd is not running
# (containers, chroots, image builds) or when dpkg works on another root (DPKG_ROOT, which the
# paths honour too, as debhelper's snippets do; tests/integration/test_packaging.sh runs postrm
# that way).
file(CONFIGURE OUTPUT ${CFW_PKG_DIR}/postinst @ONLY CONTENT [[#!/bin/sh
set -e
if [ "$1" = "configure" ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
    if [ -n "$2" ]; then
        systemctl try-restart cfwatchd.service >/dev/null || true
    fi
fi
exit 0
]])
file(CONFIGURE OUTPUT ${CFW_PKG_DIR}/prerm @ONLY CONTENT [[#!/bin/sh
set -e
if [ "$1" = "remove" ] && [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    systemctl stop cfwatchd.service >/dev/null 2>&1 || true
fi
exit 0
]])
# On purge (only then: remove and upgrade keep everything), the secrets the operator put in
# /etc/cfwatchd/credentials go with the package, and so does the state systemd created for it.
# dpkg has already deleted the conffiles and leaves the directories it could not empty.
file(CONFIGURE OUTPUT ${CFW_PKG_DIR}/postrm @ONLY CONTENT [[#!/bin/sh
set -e
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = "purge" ]; then
    rm -rf "${DPKG_ROOT:-}/etc/cfwatchd/credentials"
    rmdir "${DPKG_ROOT:-}/etc/cfwatchd/rules.d" 2>/dev/null || true
    rmdir "${DPKG_ROOT:-}/etc/cfwatchd" 2>/dev/null || true
    # DynamicUser= keeps the state in /var/lib/private/cfwatchd (/var/lib/cfwatchd links to it)
    rm -rf "${DPKG_ROOT:-}/var/lib/private/cfwatchd" "${DPKG_ROOT:-}/var/lib/cfwatchd"
fi
exit 0
]])
file(CHMOD ${CFW_PKG_DIR}/postinst ${CFW_PKG_DIR}/prerm ${CFW_PKG_DIR}/postrm
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                      WORLD_READ WORLD_EXECUTE)

# /usr/share/doc/cfwatchd/copyright (Debian policy 12.5), machine-readable (DEP-5). The
# repository has no LICENSE file and its sources state no license, so the License field says
# exactly that instead of naming one; replace the paragraph when the authors choose a license.
file(CONFIGURE OUTPUT ${CFW_PKG_DIR}/copyright @ONLY CONTENT [[Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: cfwatchd
Upstream-Contact: cfwatchd maintainers <cfwatchd@localhost>
Comment: cfwatchd's source repository has no LICENSE or COPYING file, and no source
 file carries a license notice.

Files: *
Copyright: 2026 cfwatchd maintainers
License: cfwatchd-unstated
 The authors of cfwatchd have not stated a license for it: the source
 repository contains no license file and no license notice.
]])
install(FILES ${CFW_PKG_DIR}/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR}
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# GNUInstallDirs puts the configuration in <prefix>/etc; a package installed into /usr keeps it
# in /etc (FHS). This runs on the staging tree after CPack's install and before it packs.
file(CONFIGURE OUTPUT ${CFW_PKG_DIR}/relocate-etc.cmake @ONLY CONTENT [[
# Moves <staging>/usr/etc to <staging>/etc (run by CPack as a pre-build script).
if(IS_DIRECTORY "${CPACK_TEMPORARY_DIRECTORY}/usr/etc")
    if(EXISTS "${CPACK_TEMPORARY_DIRECTORY}/etc")
        message(FATAL_ERROR "both usr/etc and etc in ${CPACK_TEMPORARY_DIRECTORY}")
    endif()
    file(RENAME "${CPACK_TEMPORARY_DIRECTORY}/usr/etc" "${CPACK_TEMPORARY_DIRECTORY}/etc")
endif()
]])

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME cfwatchd)
set(CPACK_PACKAGE_VENDOR "cfwatchd")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "cfwatchd maintainers <cfwatchd@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "watches Cloudflare Python Workers logs for failures and alerts")
set(CPACK_PACKAGE_DESCRIPTION
    "cfwatchd reads Cloudflare Python Workers deploy and runtime logs (wrangler output, CI logs,\n\
wrangler tail JSON, Logpush, the systemd journal), matches failures such as\n\
ModuleNotFoundError: No module named 'src' with PCRE2 rules, folds repeats into\n\
incidents with a cause and a fix, and alerts Slack, PagerDuty, webhooks or Alertmanager.\n\
It runs as a hardened systemd service and as `cfwatchd --once` in CI.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
# DESTDIR staging: an absolute install destination (e.g. -DCMAKE_INSTALL_SYSCONFDIR=/etc) lands
# in the package, never on the machine that builds it.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PRE_BUILD_SCRIPTS ${CFW_PKG_DIR}/relocate-etc.cmake)

set(CPACK_DEBIAN_PACKAGE_NAME cfwatchd)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "systemd")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${CFW_PKG_DIR}/conffiles;${CFW_PKG_DIR}/postinst;${CFW_PKG_DIR}/prerm;${CFW_PKG_DIR}/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
