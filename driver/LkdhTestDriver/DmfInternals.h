/*
 * DmfInternals.h - what LkdhTestDriver reads from DMF's private structures, and why.
 *
 * INFO must report two values the public DMF API does not expose: the DMFCOLLECTION handle that
 * DmfLiveKernelDump.c stores as bugcheck parameter 2 (F02/F18), and ReportType/GUIDs as the module's
 * own copy of its config holds them (F05: DMF keeps only 11 characters). Both are read-only reads,
 * isolated in DmfInternals.c so that a DMF update that moves them breaks one small file.
 *
 * Include after a DMF header (for WDFDEVICE and DMFMODULE).
 */

#pragma once

#include "lkdh_control.h"

/* Fill Reply->DmfCollection, GuidSecondaryData, GuidDeviceInterface, ReportType and
 * IncludeDmfDataInBugCheckTriageDump from the module's own copy of its config. */
_IRQL_requires_max_(PASSIVE_LEVEL)
VOID
LkdhDmfInternalsDescribe(
    _In_ WDFDEVICE Device,
    _In_ DMFMODULE LiveKernelDumpModule,
    _Inout_ LKDH_INFO_REPLY* Reply
    );
