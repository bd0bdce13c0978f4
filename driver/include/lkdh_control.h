/*
 * lkdh_control.h - the control protocol between the lkdh harness and LkdhTestDriver.
 *
 * This header is the single source of truth for the wire format. It is shared by the kernel
 * driver (driver/LkdhTestDriver), the user-mode tool that carries the bytes (driver/lkdctl), and
 * mirrored field for field by harness/target/windows/protocol.py; tests/test_driver_header.py
 * generates _Static_asserts from the Python layouts and compiles them against this file with
 * mingw-w64, so the two cannot drift apart silently.
 *
 * Rules of the format
 *   - Every structure is packed to 1 byte, little-endian, made only of fixed-width integers and
 *     byte arrays, so its size is the same for every compiler and for a 32- or 64-bit caller.
 *     Fields are nevertheless placed on natural boundaries where it costs nothing.
 *   - GUIDs travel as 16 bytes in the in-memory order of a Windows GUID (Data1..Data3 little-endian,
 *     Data4 as is), which is Python's uuid.UUID.bytes_le.
 *   - A request is a fixed structure that starts with LKDH_HEADER, optionally followed by an array
 *     of fixed-size entries (CREATE's client structures) or raw bytes (ALLOC's fill pattern);
 *     Header.TotalSize is the whole input length and must equal the IOCTL's input length.
 *   - A reply is LKDH_REPLY (24 bytes) for every operation except INFO (LKDH_INFO_REPLY).
 *
 * Versions and how a mismatch shows
 *   LKDH_PROTOCOL_VERSION changes whenever any layout, code or meaning in this file changes.
 *   The driver checks Magic, Version, Operation and TotalSize of every request and completes the
 *   IOCTL with STATUS_REVISION_MISMATCH when Magic or Version differ (STATUS_INFO_LENGTH_MISMATCH
 *   when only the size is wrong). INFO is the exception: it only needs the request magic and always
 *   answers with the driver's own version; LKDH_INFO_REPLY only ever grows at its end and never
 *   beyond LKDH_INFO_REPLY_MAX_SIZE, which is the output size a harness always offers. So the
 *   harness sends INFO first and can read the driver's version from any build and name both
 *   versions in its error; for other operations DMF_IoctlHandler's size checks come before the
 *   driver's, so a changed layout may surface as STATUS_BUFFER_TOO_SMALL instead.
 *   Replies carry their own magic (LKDR, not the request's LKDQ): METHOD_BUFFERED uses one system
 *   buffer for input and output, and a distinct magic proves the driver wrote the reply rather
 *   than returning the request bytes.
 *
 * Two statuses
 *   The IOCTL's completion status says whether the driver understood and carried out the request.
 *   LKDH_REPLY.DmfStatus is the NTSTATUS the DMF method returned (STATUS_SUCCESS for the methods
 *   that return VOID and for ALLOC/FREE, which call no DMF method). A scenario checks the second;
 *   the first is an infrastructure fact.
 */

#ifndef LKDH_CONTROL_H
#define LKDH_CONTROL_H

#include <stddef.h>
#include <stdint.h>

/* C11/C++11 static assertions, with the negative-array fallback for MSVC C modes before /std:c11
 * (older WDK projects), so the kernel build checks the same sizes as mingw-w64 does. */
#if defined(__cplusplus)
#define LKDH_STATIC_ASSERT(condition, message) static_assert(condition, message)
#elif defined(__STDC_VERSION__) && (__STDC_VERSION__ >= 201112L)
#define LKDH_STATIC_ASSERT(condition, message) _Static_assert(condition, message)
#else
#define LKDH_STATIC_ASSERT_JOIN2(a, b) a##b
#define LKDH_STATIC_ASSERT_JOIN(a, b) LKDH_STATIC_ASSERT_JOIN2(a, b)
#define LKDH_STATIC_ASSERT(condition, message) \
    typedef char LKDH_STATIC_ASSERT_JOIN(lkdh_static_assert_, __LINE__)[(condition) ? 1 : -1]
#endif

/* ---------------------------------------------------------------------------------------------
 * Identity
 */

#define LKDH_PROTOCOL_VERSION 2u /* 2: INFO reports the module configuration the driver read */

/* 'LKDQ' and 'LKDR' as little-endian 32-bit values: requests and replies. */
#define LKDH_REQUEST_MAGIC 0x51444B4Cu
#define LKDH_REPLY_MAGIC 0x52444B4Cu

/*
 * GUIDs, written as initialisers for a Windows GUID structure ({Data1, Data2, Data3, {Data4}}).
 * CONTROL: the test driver's own interface (this protocol).
 * MODULE: DMF_CONFIG_LiveKernelDump.GuidDeviceInterface (IOCTL_LIVEKERNELDUMP_CREATE, F23).
 * SECONDARY_DATA: DMF_CONFIG_LiveKernelDump.GuidSecondaryData (the DumpBlob tag, F07/F21).
 */
#define LKDH_SECONDARY_DATA_GUID_INIT \
    { 0x6b1f5a0eu, 0x8c1du, 0x4c35u, { 0x9au, 0x57u, 0x4cu, 0x4bu, 0x44u, 0x48u, 0x00u, 0x01u } }
#define LKDH_MODULE_INTERFACE_GUID_INIT \
    { 0x6b1f5a0eu, 0x8c1du, 0x4c35u, { 0x9au, 0x57u, 0x4cu, 0x4bu, 0x44u, 0x48u, 0x00u, 0x02u } }
#define LKDH_CONTROL_INTERFACE_GUID_INIT \
    { 0x6b1f5a0eu, 0x8c1du, 0x4c35u, { 0x9au, 0x57u, 0x4cu, 0x4bu, 0x44u, 0x48u, 0x00u, 0x03u } }

/* The same GUIDs as text, for tools and messages. */
#define LKDH_CONTROL_INTERFACE_GUID_TEXT "6b1f5a0e-8c1d-4c35-9a57-4c4b44480003"
#define LKDH_MODULE_INTERFACE_GUID_TEXT "6b1f5a0e-8c1d-4c35-9a57-4c4b44480002"

/* ---------------------------------------------------------------------------------------------
 * IOCTL codes: CTL_CODE(FILE_DEVICE_UNKNOWN, function, METHOD_BUFFERED, access), spelled out so
 * this header needs neither winioctl.h nor wdm.h. Operations that change kernel state need a handle
 * opened for writing (FILE_WRITE_ACCESS); INFO and QUERY_DMF_DATA_SIZE only read.
 */

#define LKDH_FILE_DEVICE_UNKNOWN 0x00000022u
#define LKDH_METHOD_BUFFERED 0u
#define LKDH_FILE_ANY_ACCESS 0u
#define LKDH_FILE_WRITE_ACCESS 2u
#define LKDH_CTL_CODE(device_type, function, method, access) \
    (((uint32_t)(device_type) << 16) | ((uint32_t)(access) << 14) | ((uint32_t)(function) << 2) | (uint32_t)(method))

/* Operation numbers: the IOCTL function code, also carried in LKDH_HEADER.Operation. */
#define LKDH_OP_ALLOC 0x900u
#define LKDH_OP_FREE 0x901u
#define LKDH_OP_STORE 0x902u
#define LKDH_OP_REMOVE 0x903u
#define LKDH_OP_CREATE 0x904u
#define LKDH_OP_STORE_COLLECTION 0x905u
#define LKDH_OP_QUERY_DMF_DATA_SIZE 0x906u
#define LKDH_OP_INFO 0x907u

#define LKDH_IOCTL(op, access) LKDH_CTL_CODE(LKDH_FILE_DEVICE_UNKNOWN, op, LKDH_METHOD_BUFFERED, access)
#define IOCTL_LKDH_ALLOC LKDH_IOCTL(LKDH_OP_ALLOC, LKDH_FILE_WRITE_ACCESS)
#define IOCTL_LKDH_FREE LKDH_IOCTL(LKDH_OP_FREE, LKDH_FILE_WRITE_ACCESS)
#define IOCTL_LKDH_STORE LKDH_IOCTL(LKDH_OP_STORE, LKDH_FILE_WRITE_ACCESS)
#define IOCTL_LKDH_REMOVE LKDH_IOCTL(LKDH_OP_REMOVE, LKDH_FILE_WRITE_ACCESS)
#define IOCTL_LKDH_CREATE LKDH_IOCTL(LKDH_OP_CREATE, LKDH_FILE_WRITE_ACCESS)
#define IOCTL_LKDH_STORE_COLLECTION LKDH_IOCTL(LKDH_OP_STORE_COLLECTION, LKDH_FILE_WRITE_ACCESS)
#define IOCTL_LKDH_QUERY_DMF_DATA_SIZE LKDH_IOCTL(LKDH_OP_QUERY_DMF_DATA_SIZE, LKDH_FILE_ANY_ACCESS)
#define IOCTL_LKDH_INFO LKDH_IOCTL(LKDH_OP_INFO, LKDH_FILE_ANY_ACCESS)

/* The module's own IOCTL (Dmf_LiveKernelDump_Public.h; DMF_FACTS.md F23): function 4800, write access. */
#define LKDH_IOCTL_LIVEKERNELDUMP_CREATE LKDH_CTL_CODE(LKDH_FILE_DEVICE_UNKNOWN, 4800u, LKDH_METHOD_BUFFERED, LKDH_FILE_WRITE_ACCESS)

/* ---------------------------------------------------------------------------------------------
 * Enumerations and limits
 */

/* IRQL the driver raises to (KeRaiseIrql) before calling the DMF method; the x64 kernel's values. */
#define LKDH_IRQL_PASSIVE 0u
#define LKDH_IRQL_APC 1u
#define LKDH_IRQL_DISPATCH 2u

/* Pool for ALLOC, mapped to ExAllocatePool2 flags. */
#define LKDH_POOL_NON_PAGED_NX 0u      /* POOL_FLAG_NON_PAGED */
#define LKDH_POOL_PAGED 1u             /* POOL_FLAG_PAGED */
#define LKDH_POOL_NON_PAGED_EXECUTE 2u /* POOL_FLAG_NON_PAGED_EXECUTE ("NonPagedPool") */

/* How a LKDH_BUFFER_SLICE names its buffer. */
#define LKDH_BUFFER_SLOT 0u /* an ALLOC slot: address = slot base + Offset */
#define LKDH_BUFFER_RAW 1u  /* a raw kernel address, unchecked (NULL, stale): address = Address + Offset */

#define LKDH_MAX_SLOTS 1024u
#define LKDH_MAX_ALLOCATION_SIZE (16u * 1024u * 1024u)
#define LKDH_MAX_PATTERN_LENGTH 65536u
#define LKDH_MAX_CLIENT_STRUCTURES 4096u
#define LKDH_INFO_REPLY_MAX_SIZE 4096u
#define LKDH_INFO_REPLY_V1_SIZE 152u /* protocol 1's INFO reply: the prefix every later one keeps */

/* ---------------------------------------------------------------------------------------------
 * Module configuration from the registry (protocol 2)
 *
 * At EvtDriverDeviceAdd the driver fills DMF_CONFIG_LiveKernelDump from values under the device's
 * hardware key ("Device Parameters": WdfDeviceOpenRegistryKey with PLUGPLAY_REGKEY_DEVICE, KEY_READ),
 * each value falling back to the built-in default (LKDH_SECONDARY_DATA_GUID_INIT,
 * LKDH_MODULE_INTERFACE_GUID_INIT, ReportType "LkdhTestDriver", IncludeDmfData 0) when it is absent,
 * of the wrong type or invalid. A value is read once per device start: a change takes effect when
 * the device restarts (pnputil /restart-device) or the machine reboots. INFO reports, per value,
 * whether the registry supplied it (ConfigFromRegistry) or held something the driver refused
 * (ConfigRejected), so a harness verifies the setting took rather than trusting its write.
 *
 *   ReportType                          REG_SZ, 1..LKDH_REPORT_TYPE_MAX_CHARS characters, a valid
 *                                       folder name (no control character, none of \ / : * ? " < > |,
 *                                       not ending in '.' or ' '); DMF keeps 11 of them (F05)
 *   GuidDeviceInterface                 REG_SZ "{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}"
 *                                       (RtlGUIDFromString); all zeros: no interface (F23)
 *   GuidSecondaryData                   REG_SZ, same format; all zeros: no secondary data (F21)
 *   IncludeDmfDataInBugCheckTriageDump  REG_DWORD 0 or 1 (F22)
 *
 * The names are written once, as narrow text; LKDH_WIDE makes the driver's UNICODE literals from it.
 */
#define LKDH_WIDE_JOIN(text) L##text
#define LKDH_WIDE(text) LKDH_WIDE_JOIN(text)

#define LKDH_REG_REPORT_TYPE_TEXT "ReportType"
#define LKDH_REG_GUID_DEVICE_INTERFACE_TEXT "GuidDeviceInterface"
#define LKDH_REG_GUID_SECONDARY_DATA_TEXT "GuidSecondaryData"
#define LKDH_REG_INCLUDE_DMF_DATA_TEXT "IncludeDmfDataInBugCheckTriageDump"

#define LKDH_REG_REPORT_TYPE LKDH_WIDE(LKDH_REG_REPORT_TYPE_TEXT)
#define LKDH_REG_GUID_DEVICE_INTERFACE LKDH_WIDE(LKDH_REG_GUID_DEVICE_INTERFACE_TEXT)
#define LKDH_REG_GUID_SECONDARY_DATA LKDH_WIDE(LKDH_REG_GUID_SECONDARY_DATA_TEXT)
#define LKDH_REG_INCLUDE_DMF_DATA LKDH_WIDE(LKDH_REG_INCLUDE_DMF_DATA_TEXT)

/* lkmdtel takes at most 16 WCHARs with the NUL (F05); DMF's own field keeps 11 of them. */
#define LKDH_REPORT_TYPE_MAX_CHARS 15u
#define LKDH_DEFAULT_REPORT_TYPE_TEXT "LkdhTestDriver"
/* "{" 36 characters "}": the only form RtlGUIDFromString accepts. */
#define LKDH_GUID_TEXT_CHARS 38u

/* LKDH_INFO_REPLY.ConfigFromRegistry / ConfigRejected: one bit per registry value. */
#define LKDH_CONFIG_REPORT_TYPE 0x00000001u
#define LKDH_CONFIG_GUID_DEVICE_INTERFACE 0x00000002u
#define LKDH_CONFIG_GUID_SECONDARY_DATA 0x00000004u
#define LKDH_CONFIG_INCLUDE_DMF_DATA 0x00000008u

/* LKDH_INFO_REPLY.Flags */
#define LKDH_INFO_FLAG_VERIFIER 0x00000001u           /* MmIsDriverVerifying() for this driver */
#define LKDH_INFO_FLAG_LIVE_DUMP_SUPPORTED 0x00000002u /* built for RS3+, so lkmdtel is linked (F01/F04) */
#define LKDH_INFO_FLAG_MODULE_PRESENT 0x00000004u     /* the LiveKernelDump feature module exists */

/*
 * Completion statuses of the control IOCTLs (the IOCTL's own status, not DmfStatus):
 *   STATUS_SUCCESS                 the request was carried out; see DmfStatus
 *   STATUS_REVISION_MISMATCH       wrong Magic, or (except for INFO) wrong Version
 *   STATUS_INFO_LENGTH_MISMATCH    TotalSize or the trailing data disagree with the input length
 *   STATUS_BUFFER_TOO_SMALL        input shorter than the fixed part, or output shorter than the
 *                                  reply (checked by DMF_IoctlHandler from the IOCTL table)
 *   STATUS_INVALID_PARAMETER       a field is out of range (IRQL, pool, kind, slot id, size,
 *                                  reserved != 0) or Header.Operation differs from the IOCTL
 *   STATUS_NOT_FOUND               a slot holds no allocation
 *   STATUS_DUPLICATE_OBJECTID      ALLOC into a slot that is in use
 *   STATUS_INSUFFICIENT_RESOURCES  ExAllocatePool2 failed
 *   STATUS_INVALID_DEVICE_STATE    the LiveKernelDump feature module is missing
 *   STATUS_ACCESS_DENIED           the handle was not opened by an elevated administrator, or (for
 *                                  the FILE_WRITE_ACCESS codes) not opened for writing
 */

/* ---------------------------------------------------------------------------------------------
 * Layouts
 */

#pragma pack(push, 1)

/* Starts every request and every reply. */
typedef struct _LKDH_HEADER {
    uint32_t Magic;     /* LKDH_REQUEST_MAGIC or LKDH_REPLY_MAGIC */
    uint16_t Version;   /* LKDH_PROTOCOL_VERSION */
    uint16_t Operation; /* LKDH_OP_* */
    uint32_t TotalSize; /* bytes of the whole request or reply, header included */
} LKDH_HEADER;

/* A buffer for STORE/REMOVE/CREATE: an ALLOC slot or a raw address, plus an offset and a length. */
typedef struct _LKDH_BUFFER_SLICE {
    uint32_t Kind;    /* LKDH_BUFFER_SLOT or LKDH_BUFFER_RAW */
    uint32_t SlotId;  /* LKDH_BUFFER_SLOT: 0 .. LKDH_MAX_SLOTS-1; must be 0 for RAW */
    uint64_t Address; /* LKDH_BUFFER_RAW: the base address; must be 0 for SLOT */
    uint64_t Offset;  /* added to the base; not checked against the allocation (DMF does not either) */
    uint32_t Length;  /* the ULONG length DMF receives */
    uint32_t Reserved;
} LKDH_BUFFER_SLICE;

/* ALLOC: ExAllocatePool2(pool, Size) filled with Pattern repeated (zeros when PatternLength is 0).
 * Followed by PatternLength bytes of pattern. Reply.Value = the kernel address. */
typedef struct _LKDH_ALLOC_REQUEST {
    LKDH_HEADER Header;
    uint32_t SlotId;
    uint32_t PoolType; /* LKDH_POOL_* */
    uint32_t Size;     /* 1 .. LKDH_MAX_ALLOCATION_SIZE */
    uint32_t PatternLength;
} LKDH_ALLOC_REQUEST;

/* FREE: ExFreePoolWithTag of a slot. Reply.Value = the address that was freed. */
typedef struct _LKDH_FREE_REQUEST {
    LKDH_HEADER Header;
    uint32_t SlotId;
} LKDH_FREE_REQUEST;

/* STORE (DataBufferSourceAdd) and REMOVE (DataBufferSourceRemove) at Irql.
 * Reply.DmfStatus = what Add returned (Remove returns VOID: STATUS_SUCCESS); Reply.Value = address. */
typedef struct _LKDH_BUFFER_REQUEST {
    LKDH_HEADER Header;
    uint32_t Irql; /* LKDH_IRQL_* */
    LKDH_BUFFER_SLICE Buffer;
} LKDH_BUFFER_REQUEST;

/* CREATE (LiveKernelMemoryDumpCreate) at Irql. Followed by NumberOfClientStructures slices, each
 * becoming one LIVEKERNELDUMP_CLIENT_STRUCTURE {Address, Size}. ExcludeDmfData is the raw BOOLEAN
 * byte: values other than 0 and 1 are passed through on purpose (F17). */
typedef struct _LKDH_CREATE_REQUEST {
    LKDH_HEADER Header;
    uint32_t BugCheckCode;
    uint64_t BugCheckParameter;
    uint8_t ExcludeDmfData;
    uint8_t Reserved[3];
    uint32_t Irql;
    uint32_t NumberOfClientStructures; /* 0 .. LKDH_MAX_CLIENT_STRUCTURES */
    uint32_t HasSecondaryData;         /* 0: SizeOfSecondaryData 0, buffer NULL; 1: SecondaryData */
    LKDH_BUFFER_SLICE SecondaryData;
} LKDH_CREATE_REQUEST;

/* STORE_COLLECTION (StoreDmfCollectionAsBugcheckParameter) at Irql. Reply.Value = Value. */
typedef struct _LKDH_STORE_COLLECTION_REQUEST {
    LKDH_HEADER Header;
    uint32_t Irql;
    uint64_t Value;
} LKDH_STORE_COLLECTION_REQUEST;

/* QUERY_DMF_DATA_SIZE (DmfDataSizeGet, PASSIVE) and INFO take a bare LKDH_HEADER. */

/* The reply to every operation but INFO. */
typedef struct _LKDH_REPLY {
    LKDH_HEADER Header;
    uint32_t DmfStatus; /* NTSTATUS the DMF method returned */
    uint64_t Value;     /* address, size or value, per operation */
} LKDH_REPLY;

/* The reply to INFO. Stable prefix: later versions only append fields. */
typedef struct _LKDH_INFO_REPLY {
    LKDH_HEADER Header;              /* Header.Version is the driver's protocol version */
    uint32_t DmfStatus;              /* STATUS_SUCCESS, or STATUS_NOT_FOUND without the module */
    uint64_t DmfCollection;          /* the DMFCOLLECTION handle the module stores as P2 (F02/F18) */
    uint64_t LiveKernelDumpModule;   /* the feature module's DMFMODULE handle */
    uint8_t GuidSecondaryData[16];   /* as the module's config holds it */
    uint8_t GuidDeviceInterface[16]; /* as the module's config holds it */
    uint16_t ReportType[16];         /* UTF-16, NUL padded; DMF keeps 12 WCHARs of it (F05) */
    uint16_t DriverVersion[4];       /* major, minor, build, revision */
    uint32_t Flags;                  /* LKDH_INFO_FLAG_* */
    uint32_t Reserved;
    char DmfCommit[40];              /* the DMF commit the driver was built against, ASCII hex */
    /* protocol 2: the module configuration as the driver read it at this device start */
    uint32_t ConfigFromRegistry;     /* LKDH_CONFIG_*: taken from the device's hardware key */
    uint32_t ConfigRejected;         /* LKDH_CONFIG_*: present but refused; the default was used */
    uint32_t ConfigKeyStatus;        /* NTSTATUS of WdfDeviceOpenRegistryKey (PLUGPLAY_REGKEY_DEVICE) */
    uint8_t IncludeDmfDataInBugCheckTriageDump; /* as the module's config holds it (F22) */
    uint8_t ConfigReserved[3];
    uint16_t RequestedReportType[16]; /* UTF-16, NUL padded: what the driver gave DMF, before F05 */
} LKDH_INFO_REPLY;

/* IOCTL_LIVEKERNELDUMP_CREATE input as an x64 caller lays it out (LIVEKERNELDUMP_INPUT_BUFFER,
 * packed to 1 byte; F24). Pointers are 64-bit addresses in the caller's address space. */
typedef struct _LKDH_LIVEKERNELDUMP_CREATE_INPUT {
    uint32_t BugCheckCode;
    uint64_t BugCheckParameter;
    uint8_t ExcludeDmfData;
    uint32_t NumberOfClientStructures;
    uint64_t ArrayOfClientStructures;
    uint32_t SizeOfSecondaryData;
    uint64_t SecondaryDataBuffer;
} LKDH_LIVEKERNELDUMP_CREATE_INPUT;

/* LIVEKERNELDUMP_CLIENT_STRUCTURE on x64 (F20). */
typedef struct _LKDH_LIVEKERNELDUMP_CLIENT_STRUCTURE {
    uint64_t Address;
    uint32_t Size;
} LKDH_LIVEKERNELDUMP_CLIENT_STRUCTURE;

#pragma pack(pop)

/* The sizes every party relies on; the Python side asserts the same numbers. */
LKDH_STATIC_ASSERT(sizeof(LKDH_HEADER) == 12, "LKDH_HEADER");
LKDH_STATIC_ASSERT(sizeof(LKDH_BUFFER_SLICE) == 32, "LKDH_BUFFER_SLICE");
LKDH_STATIC_ASSERT(sizeof(LKDH_REPLY) == 24, "LKDH_REPLY");
LKDH_STATIC_ASSERT(sizeof(LKDH_INFO_REPLY) == 200, "LKDH_INFO_REPLY");
LKDH_STATIC_ASSERT(offsetof(LKDH_INFO_REPLY, ConfigFromRegistry) == LKDH_INFO_REPLY_V1_SIZE, "protocol 1 prefix");
LKDH_STATIC_ASSERT(sizeof(LKDH_INFO_REPLY) <= LKDH_INFO_REPLY_MAX_SIZE, "INFO must fit what harnesses offer");
LKDH_STATIC_ASSERT(sizeof(LKDH_LIVEKERNELDUMP_CREATE_INPUT) == 37, "F24: 37 bytes on x64");
LKDH_STATIC_ASSERT(sizeof(LKDH_LIVEKERNELDUMP_CLIENT_STRUCTURE) == 12, "F20: 12 bytes on x64");
LKDH_STATIC_ASSERT(LKDH_IOCTL_LIVEKERNELDUMP_CREATE == 0x0022CB00u, "F23");

/* ---------------------------------------------------------------------------------------------
 * lkdctl: process exit codes. 1 and 3 are left out on purpose: 1 is what a generic failure looks
 * like and 3 is what abort() returns on Windows, so neither can be mistaken for a diagnosis.
 */

#define LKDCTL_EXIT_OK 0                  /* the IOCTL was sent; its NTSTATUS is in the JSON */
#define LKDCTL_EXIT_BAD_ARGUMENTS 2       /* usage error; nothing was opened */
#define LKDCTL_EXIT_NO_DEVICE_INTERFACE 4 /* no present interface for the GUID */
#define LKDCTL_EXIT_OPEN_FAILED 5         /* CreateFileW failed; Win32 error in the JSON */
#define LKDCTL_EXIT_INPUT_UNREADABLE 6    /* --in-file could not be read */
#define LKDCTL_EXIT_INTERNAL 7            /* out of memory, ntdll entry point missing */
#define LKDCTL_EXIT_DEVICE_INSTALL_FAILED 8/* --install-device: a SetupDi/newdev step failed */

#define LKDCTL_VERSION "1.1.0"

#endif /* LKDH_CONTROL_H */
