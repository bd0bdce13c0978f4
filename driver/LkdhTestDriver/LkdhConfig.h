/*
 * LkdhConfig.h - the module configuration the test driver reads from its device's registry
 * parameters at every device start (Config.c), and what INFO reports about it.
 *
 * Value names, formats and limits are in lkdh_control.h ("Module configuration from the
 * registry"), the single source the harness mirrors. This header needs only the WDK's kernel and
 * KMDF declarations, so Config.c can be compiled apart from DMF (tests/test_driver_config.py does,
 * against a minimal set of those declarations).
 */

#pragma once

#include <ntddk.h>
#include <wdf.h>

#include "lkdh_control.h"

/* What the driver hands DMF_CONFIG_LiveKernelDump, and where each value came from. */
typedef struct _LKDH_MODULE_SETTINGS {
    WCHAR ReportType[LKDH_REPORT_TYPE_MAX_CHARS + 1]; /* NUL terminated */
    GUID GuidDeviceInterface;
    GUID GuidSecondaryData;
    BOOLEAN IncludeDmfDataInBugCheckTriageDump;
    ULONG FromRegistry; /* LKDH_CONFIG_* */
    ULONG Rejected;     /* LKDH_CONFIG_* */
    NTSTATUS KeyStatus; /* of opening the hardware key; STATUS_SUCCESS when it was read */
} LKDH_MODULE_SETTINGS;

/* The built-in values: what the driver used before it read the registry. */
VOID
LkdhSettingsDefaults(
    _Out_ LKDH_MODULE_SETTINGS* Settings
    );

/* TRUE when Count characters make a ReportType the driver accepts (lkdh_control.h). */
BOOLEAN
LkdhReportTypeValid(
    _In_reads_(Count) const WCHAR* Characters,
    _In_ SIZE_T Count
    );

/* Defaults, then every value present and valid under the device's hardware key. Never fails: a
 * missing key or value keeps the default, a refused one is recorded in Settings->Rejected. */
_IRQL_requires_max_(PASSIVE_LEVEL)
VOID
LkdhSettingsRead(
    _In_ WDFDEVICE Device,
    _Out_ LKDH_MODULE_SETTINGS* Settings
    );
