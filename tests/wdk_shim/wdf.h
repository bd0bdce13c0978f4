/*
 * tests/wdk_shim/wdf.h - NOT the WDK: the KMDF registry methods Config.c calls, with the
 * signatures of MicrosoftDocs windows-driver-docs-ddi (wdfdevice/nf-wdfdevice-wdfdeviceopenregistrykey,
 * wdfregistry/nf-wdfregistry-wdfregistryqueryunicodestring, -wdfregistryqueryulong,
 * -wdfregistryclose). In the real headers each is a FORCEINLINE wrapper around the framework's
 * function table; here they are plain functions a test links its registry table to.
 */
#pragma once

#include "ntddk.h"

typedef struct LKDH_SHIM_WDFDEVICE* WDFDEVICE;
typedef struct LKDH_SHIM_WDFKEY* WDFKEY;
typedef struct _WDF_OBJECT_ATTRIBUTES WDF_OBJECT_ATTRIBUTES;
typedef WDF_OBJECT_ATTRIBUTES* PWDF_OBJECT_ATTRIBUTES;
#define WDF_NO_OBJECT_ATTRIBUTES ((PWDF_OBJECT_ATTRIBUTES)NULL)

NTSTATUS WdfDeviceOpenRegistryKey(WDFDEVICE Device, ULONG DeviceInstanceKeyType, ACCESS_MASK DesiredAccess,
                                  PWDF_OBJECT_ATTRIBUTES KeyAttributes, WDFKEY* Key);
NTSTATUS WdfRegistryQueryUnicodeString(WDFKEY Key, PCUNICODE_STRING ValueName, USHORT* ValueByteLength,
                                       UNICODE_STRING* Value);
NTSTATUS WdfRegistryQueryULong(WDFKEY Key, PCUNICODE_STRING ValueName, ULONG* Value);
VOID WdfRegistryClose(WDFKEY Key);
