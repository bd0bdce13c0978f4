/*
 * LkdhTestDriver.h - private declarations of the lkdh test client driver.
 *
 * The driver exists to let the harness call DMF_LiveKernelDump's methods exactly as a client driver
 * would, with arguments the harness chooses (including bad ones) and at the IRQL it chooses. It adds
 * no policy of its own beyond what it needs to stay a faithful pass-through: see Control.c.
 */

#pragma once

#include "DmfModules.Library.h"

#include <ntstrsafe.h>

#include "lkdh_control.h"
#include "DmfInternals.h"
#include "LkdhConfig.h"

#define LKDH_POOL_TAG 'hdkL' /* "Lkdh" in pool dumps */

/* The ReportType, GUIDs and IncludeDmfDataInBugCheckTriageDump the driver asks for come from the
 * device's registry parameters, with built-in defaults (Config.c, lkdh_control.h). DMF bfac434 keeps
 * 11 characters of a ReportType ("LkdhTestDri" by default, F05). */

#include "LkdhVersion.h" /* driver version and DMF commit, stamped by driver/build.ps1 */

/* One ALLOC slot: a pool block the harness refers to by slot id. */
typedef struct _LKDH_SLOT {
    VOID* Address; /* NULL when the slot is free */
    ULONG Size;
} LKDH_SLOT;

typedef struct _DEVICE_CONTEXT {
    /* Protects Slots; held only to read or change the table, never across a DMF call. */
    WDFWAITLOCK SlotLock;
    LKDH_SLOT Slots[LKDH_MAX_SLOTS];
    /* The module configuration read at this device start (Config.c); INFO reports it. */
    LKDH_MODULE_SETTINGS Settings;
} DEVICE_CONTEXT;

WDF_DECLARE_CONTEXT_TYPE_WITH_NAME(DEVICE_CONTEXT, DeviceContextGet)

/* Control.c: the IOCTL table handed to DMF_IoctlHandler for the control interface. */
extern IoctlHandler_IoctlRecord LkdhControlIoctls[];
extern const ULONG LkdhControlIoctlCount;

/* Slots.c */
_IRQL_requires_max_(PASSIVE_LEVEL)
NTSTATUS
LkdhSlotAllocate(
    _In_ DEVICE_CONTEXT* Context,
    _In_ ULONG SlotId,
    _In_ ULONG PoolType,
    _In_ ULONG Size,
    _In_reads_bytes_(PatternLength) const UCHAR* Pattern,
    _In_ ULONG PatternLength,
    _Out_ VOID** Address
    );

_IRQL_requires_max_(PASSIVE_LEVEL)
NTSTATUS
LkdhSlotFree(
    _In_ DEVICE_CONTEXT* Context,
    _In_ ULONG SlotId,
    _Out_ VOID** Address
    );

_IRQL_requires_max_(PASSIVE_LEVEL)
NTSTATUS
LkdhSliceResolve(
    _In_ DEVICE_CONTEXT* Context,
    _In_ const LKDH_BUFFER_SLICE* Slice,
    _Out_ VOID** Address
    );

_IRQL_requires_max_(PASSIVE_LEVEL)
VOID
LkdhSlotsFreeAll(
    _In_ DEVICE_CONTEXT* Context
    );
