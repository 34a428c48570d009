# units.cmake — hired_configure_units(PREFIX OUTDIR): writes the systemd units, sysusers and
# tmpfiles snippets for an installation under PREFIX into OUTDIR, from systemd/*.in. Used at
# configure time (build/systemd/, for CMAKE_INSTALL_PREFIX) and again at install time by
# systemd/CMakeLists.txt's install(CODE), where PREFIX is the prefix actually installed to
# (`cmake --install build --prefix DIR` may differ from the configured one), so ExecStart= always
# names the binaries where they land. Expects HIRED_UNITS_SRC (the systemd/ source folder),
# HIRED_UNITS_BINDIR and HIRED_UNITS_SYSCONFDIR (GNUInstallDirs' BINDIR and SYSCONFDIR, relative
# or absolute) to be set.
#
# Substitutions: @HIRED_BINDIR@ (absolute bin directory), @HIRED_CONFDIR@ (absolute
# configuration directory: SYSCONFDIR/hired, where SYSCONFDIR of the prefix /usr is /etc as
# GNUInstallDirs has it).
set(HIRED_UNIT_FILES hired.target hired-broker.target hired-encoders.target hired-decoders.target
    hired-gateway.target hired-broker.service hired-encoder@.service hired-decoder@.service hired-gateway.service
    hired.sysusers hired.tmpfiles)

function(hired_configure_units prefix outdir)
  if(IS_ABSOLUTE "${HIRED_UNITS_BINDIR}")
    set(HIRED_BINDIR "${HIRED_UNITS_BINDIR}")
  else()
    set(HIRED_BINDIR "${prefix}/${HIRED_UNITS_BINDIR}")
  endif()
  if(IS_ABSOLUTE "${HIRED_UNITS_SYSCONFDIR}")
    set(sysconf "${HIRED_UNITS_SYSCONFDIR}")
  elseif(prefix STREQUAL "/usr" AND HIRED_UNITS_SYSCONFDIR STREQUAL "etc")
    set(sysconf "/etc")
  else()
    set(sysconf "${prefix}/${HIRED_UNITS_SYSCONFDIR}")
  endif()
  set(HIRED_CONFDIR "${sysconf}/hired")
  string(REGEX REPLACE "/+" "/" HIRED_BINDIR "${HIRED_BINDIR}")
  string(REGEX REPLACE "/+" "/" HIRED_CONFDIR "${HIRED_CONFDIR}")
  foreach(f ${HIRED_UNIT_FILES})
    configure_file("${HIRED_UNITS_SRC}/${f}.in" "${outdir}/${f}" @ONLY)
  endforeach()
endfunction()
