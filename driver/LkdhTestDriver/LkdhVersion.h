/*
 * LkdhVersion.h - the driver version and the DMF commit the build was made against.
 *
 * driver/build.ps1 writes LkdhStamp.h (into the build's intermediate folder, on the include path)
 * and defines LKDH_STAMPED, for the C files and for LkdhTestDriver.rc alike, so the INFO reply
 * (Control.c), the .sys version resource, the INF's DriverVer (stampinf -v) and the package's
 * lkdh-package.json all carry the same four numbers (driver/README.md, "Version stamp").
 * An unstamped build says 0.0.0.0 and the harness's package preflight refuses it.
 * Include guards, not #pragma once: the resource compiler reads this file too.
 */

#ifndef LKDH_VERSION_H
#define LKDH_VERSION_H

#ifdef LKDH_STAMPED
#include "LkdhStamp.h"
#endif

#ifndef LKDH_DRIVER_VERSION_MAJOR
#define LKDH_DRIVER_VERSION_MAJOR 0
#define LKDH_DRIVER_VERSION_MINOR 0
#define LKDH_DRIVER_VERSION_BUILD 0
#define LKDH_DRIVER_VERSION_REVISION 0
#define LKDH_DRIVER_VERSION_STRING "0.0.0.0"
#endif

/* The DMF commit the driver was built against (40 hex digits). */
#ifndef LKDH_DMF_COMMIT
#define LKDH_DMF_COMMIT "bfac434fd3497259095a1f8d70ed734493228091"
#endif

#endif /* LKDH_VERSION_H */
