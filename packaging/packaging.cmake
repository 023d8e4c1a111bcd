# packaging.cmake: install rules and the Debian package (CPack's DEB generator), included
# by the top-level CMakeLists.txt. docs/packaging.md says why CPack and what goes where.
#
#   cmake -S . -B build -DCMAKE_INSTALL_PREFIX=/usr && cmake --build build
#   (cd build && cpack -G DEB)          -> build/visiond_VERSION_ARCH.deb
#
# The binary finds the ONNX Runtime shipped beside it through a relative rpath
# ($ORIGIN/../lib/visiond), so any install prefix works and the package's
# /usr/bin/visiond loads /usr/lib/visiond/libonnxruntime.so.1.

include(GNUInstallDirs)
set(VISIOND_PRIVATE_LIBDIR "lib/visiond")
set_target_properties(visiond PROPERTIES INSTALL_RPATH "$ORIGIN/../${VISIOND_PRIVATE_LIBDIR}")
install(TARGETS visiond RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# the light fork server `visiond worker` execs (docs/worker.md, "Light horses"): a helper, not a command
install(TARGETS visiond-horse RUNTIME DESTINATION ${VISIOND_PRIVATE_LIBDIR})

# ONNX Runtime comes from npm (scripts/setup.sh), not from Debian: ship its libraries.
get_filename_component(ORT_LIB_REAL "${ORT_LIB}" REALPATH)
get_filename_component(ORT_LIB_DIR "${ORT_LIB_REAL}" DIRECTORY)
install(FILES "${ORT_LIB_REAL}" DESTINATION ${VISIOND_PRIVATE_LIBDIR} RENAME libonnxruntime.so.1)
if(EXISTS "${ORT_LIB_DIR}/libonnxruntime_providers_shared.so")
  install(FILES "${ORT_LIB_DIR}/libonnxruntime_providers_shared.so"
    DESTINATION ${VISIOND_PRIVATE_LIBDIR})
endif()

# Man pages, generated from the binary's --help at build time (packaging/mkman.py).
find_program(VISIOND_PYTHON3 python3 REQUIRED)
set(VISIOND_MAN_DIR ${PROJECT_BINARY_DIR}/man)
add_custom_command(OUTPUT ${VISIOND_MAN_DIR}/visiond.1
  COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=0 # leaks are the tests' business
          ${VISIOND_PYTHON3} ${PROJECT_SOURCE_DIR}/packaging/mkman.py $<TARGET_FILE:visiond>
          ${VISIOND_MAN_DIR} ${PROJECT_VERSION}
  DEPENDS visiond ${PROJECT_SOURCE_DIR}/packaging/mkman.py
  COMMENT "Man pages from visiond --help" VERBATIM)
add_custom_target(visiond_man ALL DEPENDS ${VISIOND_MAN_DIR}/visiond.1)
install(DIRECTORY ${VISIOND_MAN_DIR}/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
  FILES_MATCHING PATTERN "*.1.gz")

# Configuration (conffiles), systemd units, models.sh with its templates, docs.
# Files outside the prefix (/etc, /lib/systemd) are the component "system", left out of a plain
# `cmake --install` (which must not write to this machine's /etc) and put in the package.
install(FILES packaging/visiond.conf DESTINATION /etc/visiond
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ COMPONENT system EXCLUDE_FROM_ALL)
install(FILES packaging/visiond.default DESTINATION /etc/default RENAME visiond
  COMPONENT system EXCLUDE_FROM_ALL)
install(FILES packaging/systemd/visiond.service packaging/systemd/visiond-api.service
  packaging/systemd/visiond-worker.service packaging/systemd/visiond-model-server.service
  DESTINATION /lib/systemd/system COMPONENT system EXCLUDE_FROM_ALL) # Debian 12's place
install(PROGRAMS scripts/models.sh DESTINATION ${CMAKE_INSTALL_DATADIR}/visiond/scripts)
install(DIRECTORY models/ DESTINATION ${CMAKE_INSTALL_DATADIR}/visiond/models
  FILES_MATCHING PATTERN "*.json")
install(FILES README.md packaging/README.Debian docs/api.md docs/configuration.md
  docs/operations.md docs/models.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR DEB)
# one package holding every component, "system" included
set(CPACK_COMPONENTS_ALL Unspecified system)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
set(CPACK_PACKAGE_NAME visiond)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_CONTACT "visiond maintainers <visiond@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "self-hosted image-understanding service")
set(CPACK_PACKAGE_DESCRIPTION "visiond embeds images, finds faces and trains classifiers from
a few labelled examples, behind an HTTP API, with a durable job queue, fork-isolated workers
and a batching model server (ONNX Runtime, shipped in /usr/lib/visiond).")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies come from dpkg-shlibdeps on the binary (libvips42, libjansson4,
# libmicrohttpd12, libhiredis0.14, libsqlite3-0, ...): they are
# Debian's packages and cannot drift from what the binary links. The bundled ONNX Runtime
# is resolved in its private directory.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS "${ORT_LIB_DIR}")
# libpq5 and liblinear4 by name: visiond opens them with dlopen on first use (src/core/pq.h,
# src/train/liblinear.h), so dpkg-shlibdeps cannot see them
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser, libpq5, liblinear4")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "python3")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "redis-server")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/packaging/deb/conffiles ${PROJECT_SOURCE_DIR}/packaging/deb/postinst
  ${PROJECT_SOURCE_DIR}/packaging/deb/prerm ${PROJECT_SOURCE_DIR}/packaging/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
