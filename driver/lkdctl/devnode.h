/*
 * devnode.h - lkdctl's device creation (devnode.c): `lkdctl --install-device INF HARDWARE_ID`.
 */

#pragma once

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

/* Create the ROOT devnode with HARDWARE_ID unless one exists, install INF's driver on it, print one
 * JSON line; returns an LKDCTL_EXIT_* code. */
int lkdctl_install_device(const wchar_t *inf, const wchar_t *hardware_id);

/* lkdctl.c's JSON string writer (ASCII out, \uXXXX escapes), shared with devnode.c. */
void lkdctl_json_wide_string(const wchar_t *text);
