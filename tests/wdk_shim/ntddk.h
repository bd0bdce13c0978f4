/*
 * tests/wdk_shim/ntddk.h - NOT the WDK: the handful of kernel declarations driver/LkdhTestDriver/
 * Config.c uses, with the types and values the WDK documents, so tests/test_driver_config.py can
 * compile that file with mingw-w64 and with the host compiler (-fshort-wchar) and run its logic
 * against a registry table. What this cannot check: that the real WDK headers declare the same
 * (SAL, calling conventions, the KMDF function-table indirection behind every Wdf* call).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef void VOID;
typedef int32_t NTSTATUS;
typedef uint8_t BOOLEAN;
typedef uint16_t USHORT;
typedef uint32_t ULONG;
typedef size_t SIZE_T;
typedef uint32_t ACCESS_MASK;
typedef wchar_t WCHAR;
typedef const WCHAR* PCWSTR;

typedef struct _GUID {
    uint32_t Data1;
    uint16_t Data2;
    uint16_t Data3;
    uint8_t Data4[8];
} GUID;

typedef struct _UNICODE_STRING {
    USHORT Length;        /* bytes, without a terminator */
    USHORT MaximumLength; /* bytes */
    WCHAR* Buffer;
} UNICODE_STRING;
typedef const UNICODE_STRING* PCUNICODE_STRING;

#define TRUE 1
#define FALSE 0
#define NT_SUCCESS(status) (((NTSTATUS)(status)) >= 0)
#define STATUS_SUCCESS ((NTSTATUS)0x00000000L)
#define STATUS_BUFFER_OVERFLOW ((NTSTATUS)0x80000005L)
#define STATUS_INVALID_PARAMETER ((NTSTATUS)0xC000000DL)
#define STATUS_OBJECT_NAME_NOT_FOUND ((NTSTATUS)0xC0000034L)
#define STATUS_OBJECT_TYPE_MISMATCH ((NTSTATUS)0xC0000024L)
#define KEY_READ 0x20019u                 /* winnt.h */
#define PLUGPLAY_REGKEY_DEVICE 1u         /* wdm.h */

#define ARRAYSIZE(a) (sizeof(a) / sizeof((a)[0]))
#define RtlZeroMemory(d, n) memset((d), 0, (n))
#define RtlCopyMemory(d, s, n) memcpy((d), (s), (n))
#define PAGED_CODE() ((void)0)

/* SAL annotations carry no code. */
#define _In_
#define _In_opt_
#define _Out_
#define _Inout_
#define _In_reads_(n)
#define _Out_writes_(n)
#define _Use_decl_annotations_
#define _IRQL_requires_max_(irql)

VOID RtlInitUnicodeString(UNICODE_STRING* Destination, PCWSTR Source);
NTSTATUS RtlGUIDFromString(PCUNICODE_STRING GuidString, GUID* Guid);
