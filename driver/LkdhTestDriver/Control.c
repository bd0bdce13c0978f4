/*
 * Control.c - the control IOCTLs (driver/include/lkdh_control.h): one DMF call each, at the IRQL
 * the harness asked for.
 *
 * Rules that keep the driver a faithful pass-through:
 *   - The IOCTL's completion status only says whether the request was understood; what DMF returned
 *     goes back in LKDH_REPLY.DmfStatus. A DMF failure is data, never a failed IOCTL.
 *   - Every request is read completely (and copied) before the reply is written: METHOD_BUFFERED
 *     hands the same system buffer in as input and out as output.
 *   - IRQL is raised with KeRaiseIrql right before the DMF call and lowered right after, with no
 *     lock held, so DMF meets exactly the IRQL under test (F14, F28-F30). Raising to DISPATCH_LEVEL
 *     before a PASSIVE-only method is the point of some scenarios: the machine is expected to
 *     bugcheck under Driver Verifier.
 *   - Addresses and lengths are passed on unchecked, as a client driver could pass them.
 */

#include "LkdhTestDriver.h"

EVT_DMF_IoctlHandler_Callback LkdhControlIoctl;

/* Administrator only per IOCTL (not at open): an open of the device must stay allowed for anyone,
 * because DMF_IoctlHandler sees every open of the device, including opens of the module's own
 * interface, and F26 is about what the module does with a non-administrator's handle. */
IoctlHandler_IoctlRecord LkdhControlIoctls[] =
{
    { (LONG)IOCTL_LKDH_ALLOC, sizeof(LKDH_ALLOC_REQUEST), sizeof(LKDH_REPLY), LkdhControlIoctl, TRUE },
    { (LONG)IOCTL_LKDH_FREE, sizeof(LKDH_FREE_REQUEST), sizeof(LKDH_REPLY), LkdhControlIoctl, TRUE },
    { (LONG)IOCTL_LKDH_STORE, sizeof(LKDH_BUFFER_REQUEST), sizeof(LKDH_REPLY), LkdhControlIoctl, TRUE },
    { (LONG)IOCTL_LKDH_REMOVE, sizeof(LKDH_BUFFER_REQUEST), sizeof(LKDH_REPLY), LkdhControlIoctl, TRUE },
    { (LONG)IOCTL_LKDH_CREATE, sizeof(LKDH_CREATE_REQUEST), sizeof(LKDH_REPLY), LkdhControlIoctl, TRUE },
    { (LONG)IOCTL_LKDH_STORE_COLLECTION, sizeof(LKDH_STORE_COLLECTION_REQUEST), sizeof(LKDH_REPLY), LkdhControlIoctl, TRUE },
    { (LONG)IOCTL_LKDH_QUERY_DMF_DATA_SIZE, sizeof(LKDH_HEADER), sizeof(LKDH_REPLY), LkdhControlIoctl, TRUE },
    { (LONG)IOCTL_LKDH_INFO, sizeof(LKDH_HEADER), sizeof(LKDH_INFO_REPLY), LkdhControlIoctl, TRUE },
};
const ULONG LkdhControlIoctlCount = ARRAYSIZE(LkdhControlIoctls);

/* What an operation handler receives and fills. */
typedef struct _LKDH_CALL {
    DEVICE_CONTEXT* Context;
    DMFMODULE LiveKernelDump;   /* NULL when the feature module is missing */
    const UCHAR* Input;         /* the whole request, header included */
    size_t InputSize;
    LKDH_REPLY Reply;           /* DmfStatus and Value; the header is written by the dispatcher */
} LKDH_CALL;

static
KIRQL
LkdhRaiseIrql(
    _In_ ULONG Irql
    )
{
    KIRQL previous = KeGetCurrentIrql();
    if (Irql > previous)
    {
        KeRaiseIrql((KIRQL)Irql, &previous);
    }
    return previous;
}

static
VOID
LkdhLowerIrql(
    _In_ KIRQL Previous
    )
{
    if (KeGetCurrentIrql() > Previous)
    {
        KeLowerIrql(Previous);
    }
}

static
NTSTATUS
LkdhAlloc(
    _Inout_ LKDH_CALL* Call
    )
{
    LKDH_ALLOC_REQUEST request;
    VOID* address;
    NTSTATUS ntStatus;

    RtlCopyMemory(&request, Call->Input, sizeof(request));
    if (request.PatternLength > LKDH_MAX_PATTERN_LENGTH || Call->InputSize != sizeof(request) + request.PatternLength)
    {
        return STATUS_INFO_LENGTH_MISMATCH;
    }
    ntStatus = LkdhSlotAllocate(Call->Context, request.SlotId, request.PoolType, request.Size,
                                Call->Input + sizeof(request), request.PatternLength, &address);
    Call->Reply.Value = (uint64_t)(ULONG_PTR)address;
    return ntStatus;
}

static
NTSTATUS
LkdhFree(
    _Inout_ LKDH_CALL* Call
    )
{
    LKDH_FREE_REQUEST request;
    VOID* address;
    NTSTATUS ntStatus;

    RtlCopyMemory(&request, Call->Input, sizeof(request));
    ntStatus = LkdhSlotFree(Call->Context, request.SlotId, &address);
    Call->Reply.Value = (uint64_t)(ULONG_PTR)address;
    return ntStatus;
}

static
NTSTATUS
LkdhStoreOrRemove(
    _Inout_ LKDH_CALL* Call,
    _In_ BOOLEAN Store
    )
{
    LKDH_BUFFER_REQUEST request;
    VOID* address;
    KIRQL previous;
    NTSTATUS ntStatus;

    RtlCopyMemory(&request, Call->Input, sizeof(request));
    if (request.Irql > LKDH_IRQL_DISPATCH)
    {
        return STATUS_INVALID_PARAMETER;
    }
    ntStatus = LkdhSliceResolve(Call->Context, &request.Buffer, &address);
    if (!NT_SUCCESS(ntStatus))
    {
        return ntStatus;
    }
    Call->Reply.Value = (uint64_t)(ULONG_PTR)address;
    Call->Reply.DmfStatus = (uint32_t)STATUS_SUCCESS; /* DataBufferSourceRemove returns VOID */

    previous = LkdhRaiseIrql(request.Irql);
    if (Store)
    {
        Call->Reply.DmfStatus = (uint32_t)DMF_LiveKernelDump_DataBufferSourceAdd(Call->LiveKernelDump, address,
                                                                                  request.Buffer.Length);
    }
    else
    {
        DMF_LiveKernelDump_DataBufferSourceRemove(Call->LiveKernelDump, address, request.Buffer.Length);
    }
    LkdhLowerIrql(previous);
    return STATUS_SUCCESS;
}

/* The client-structure array and the secondary buffer, resolved from the request. */
static
NTSTATUS
LkdhCreateArguments(
    _Inout_ LKDH_CALL* Call,
    _In_ const LKDH_CREATE_REQUEST* Request,
    _Outptr_result_maybenull_ LIVEKERNELDUMP_CLIENT_STRUCTURE** Structures,
    _Out_ VOID** SecondaryBuffer
    )
{
    const UCHAR* entries = Call->Input + sizeof(*Request);
    NTSTATUS ntStatus;

    *Structures = NULL;
    *SecondaryBuffer = NULL;
    if (Request->HasSecondaryData != 0)
    {
        ntStatus = LkdhSliceResolve(Call->Context, &Request->SecondaryData, SecondaryBuffer);
        if (!NT_SUCCESS(ntStatus))
        {
            return ntStatus;
        }
    }
    if (Request->NumberOfClientStructures == 0)
    {
        return STATUS_SUCCESS;
    }
    *Structures = (LIVEKERNELDUMP_CLIENT_STRUCTURE*)ExAllocatePool2(
        POOL_FLAG_NON_PAGED, Request->NumberOfClientStructures * sizeof(LIVEKERNELDUMP_CLIENT_STRUCTURE), LKDH_POOL_TAG);
    if (*Structures == NULL)
    {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    for (ULONG index = 0; index < Request->NumberOfClientStructures; index++)
    {
        LKDH_BUFFER_SLICE slice;
        VOID* address;
        RtlCopyMemory(&slice, entries + index * sizeof(slice), sizeof(slice));
        ntStatus = LkdhSliceResolve(Call->Context, &slice, &address);
        if (!NT_SUCCESS(ntStatus))
        {
            ExFreePoolWithTag(*Structures, LKDH_POOL_TAG);
            *Structures = NULL;
            return ntStatus;
        }
        /* Assigned, not written through a pointer: the structure is packed (12 bytes, F20). */
        (*Structures)[index].Address = address;
        (*Structures)[index].Size = slice.Length;
    }
    return STATUS_SUCCESS;
}

static
NTSTATUS
LkdhCreate(
    _Inout_ LKDH_CALL* Call
    )
{
    LKDH_CREATE_REQUEST request;
    LIVEKERNELDUMP_CLIENT_STRUCTURE* structures;
    VOID* secondaryBuffer;
    KIRQL previous;
    NTSTATUS ntStatus;

    RtlCopyMemory(&request, Call->Input, sizeof(request));
    if (request.NumberOfClientStructures > LKDH_MAX_CLIENT_STRUCTURES ||
        Call->InputSize != sizeof(request) + (size_t)request.NumberOfClientStructures * sizeof(LKDH_BUFFER_SLICE))
    {
        return STATUS_INFO_LENGTH_MISMATCH;
    }
    if (request.Irql > LKDH_IRQL_DISPATCH || request.HasSecondaryData > 1 ||
        request.Reserved[0] != 0 || request.Reserved[1] != 0 || request.Reserved[2] != 0)
    {
        return STATUS_INVALID_PARAMETER;
    }
    ntStatus = LkdhCreateArguments(Call, &request, &structures, &secondaryBuffer);
    if (!NT_SUCCESS(ntStatus))
    {
        return ntStatus;
    }

    /* ExcludeDmfData is passed as the raw byte: 2 is not TRUE to the module (F17). */
    previous = LkdhRaiseIrql(request.Irql);
    Call->Reply.DmfStatus = (uint32_t)DMF_LiveKernelDump_LiveKernelMemoryDumpCreate(
        Call->LiveKernelDump,
        request.BugCheckCode,
        (ULONG_PTR)request.BugCheckParameter,
        (BOOLEAN)request.ExcludeDmfData,
        request.NumberOfClientStructures,
        structures,
        request.HasSecondaryData ? request.SecondaryData.Length : 0,
        secondaryBuffer);
    LkdhLowerIrql(previous);

    if (structures != NULL)
    {
        ExFreePoolWithTag(structures, LKDH_POOL_TAG);
    }
    return STATUS_SUCCESS;
}

static
NTSTATUS
LkdhStoreCollection(
    _Inout_ LKDH_CALL* Call
    )
{
    LKDH_STORE_COLLECTION_REQUEST request;
    KIRQL previous;

    RtlCopyMemory(&request, Call->Input, sizeof(request));
    if (request.Irql > LKDH_IRQL_DISPATCH)
    {
        return STATUS_INVALID_PARAMETER;
    }
    previous = LkdhRaiseIrql(request.Irql);
    DMF_LiveKernelDump_StoreDmfCollectionAsBugcheckParameter(Call->LiveKernelDump, (ULONG_PTR)request.Value);
    LkdhLowerIrql(previous);
    Call->Reply.DmfStatus = (uint32_t)STATUS_SUCCESS; /* the method returns VOID */
    Call->Reply.Value = request.Value;
    return STATUS_SUCCESS;
}

static
NTSTATUS
LkdhQueryDmfDataSize(
    _Inout_ LKDH_CALL* Call
    )
{
    Call->Reply.DmfStatus = (uint32_t)STATUS_SUCCESS;
    Call->Reply.Value = DMF_LiveKernelDump_DmfDataSizeGet(Call->LiveKernelDump);
    return STATUS_SUCCESS;
}

static
VOID
LkdhInfo(
    _In_ WDFDEVICE Device,
    _In_opt_ DMFMODULE LiveKernelDump,
    _Out_ LKDH_INFO_REPLY* Reply
    )
{
    static const char commit[] = LKDH_DMF_COMMIT;
    PDRIVER_OBJECT driverObject = WdfDriverWdmGetDriverObject(WdfGetDriver());
    const LKDH_MODULE_SETTINGS* settings;

    RtlZeroMemory(Reply, sizeof(*Reply));
    Reply->DmfStatus = (uint32_t)(LiveKernelDump != NULL ? STATUS_SUCCESS : STATUS_NOT_FOUND);
    Reply->LiveKernelDumpModule = (uint64_t)(ULONG_PTR)LiveKernelDump;
    Reply->DriverVersion[0] = LKDH_DRIVER_VERSION_MAJOR;
    Reply->DriverVersion[1] = LKDH_DRIVER_VERSION_MINOR;
    Reply->DriverVersion[2] = LKDH_DRIVER_VERSION_BUILD;
    Reply->DriverVersion[3] = LKDH_DRIVER_VERSION_REVISION;
    RtlCopyMemory(Reply->DmfCommit, commit, min(sizeof(commit) - 1, sizeof(Reply->DmfCommit)));
    if (MmIsDriverVerifying(driverObject))
    {
        Reply->Flags |= LKDH_INFO_FLAG_VERIFIER;
    }
#if IS_WIN10_RS3_OR_LATER
    Reply->Flags |= LKDH_INFO_FLAG_LIVE_DUMP_SUPPORTED;
#endif
    /* Protocol 2: the configuration this device start read from its registry parameters (Config.c). */
    settings = &DeviceContextGet(Device)->Settings;
    Reply->ConfigFromRegistry = settings->FromRegistry;
    Reply->ConfigRejected = settings->Rejected;
    Reply->ConfigKeyStatus = (uint32_t)settings->KeyStatus;
    C_ASSERT(sizeof(settings->ReportType) == sizeof(Reply->RequestedReportType));
    RtlCopyMemory(Reply->RequestedReportType, settings->ReportType, sizeof(Reply->RequestedReportType));
    if (LiveKernelDump != NULL)
    {
        Reply->Flags |= LKDH_INFO_FLAG_MODULE_PRESENT;
        LkdhDmfInternalsDescribe(Device, LiveKernelDump, Reply); /* the module's own copy, F05/F22 */
    }
}

/* Header checks shared by every operation; INFO only needs the magic (its reply names our version). */
static
NTSTATUS
LkdhCheckHeader(
    _In_ const LKDH_HEADER* Header,
    _In_ ULONG Operation,
    _In_ size_t InputSize
    )
{
    if (Header->Magic != LKDH_REQUEST_MAGIC)
    {
        return STATUS_REVISION_MISMATCH;
    }
    if (Operation == LKDH_OP_INFO)
    {
        return STATUS_SUCCESS;
    }
    if (Header->Version != LKDH_PROTOCOL_VERSION)
    {
        return STATUS_REVISION_MISMATCH;
    }
    if (Header->Operation != Operation)
    {
        return STATUS_INVALID_PARAMETER;
    }
    if (Header->TotalSize != InputSize)
    {
        return STATUS_INFO_LENGTH_MISMATCH;
    }
    return STATUS_SUCCESS;
}

static
NTSTATUS
LkdhDispatch(
    _Inout_ LKDH_CALL* Call,
    _In_ ULONG Operation
    )
{
    if (Operation != LKDH_OP_ALLOC && Operation != LKDH_OP_FREE && Call->LiveKernelDump == NULL)
    {
        return STATUS_INVALID_DEVICE_STATE;
    }
    switch (Operation)
    {
    case LKDH_OP_ALLOC:
        return LkdhAlloc(Call);
    case LKDH_OP_FREE:
        return LkdhFree(Call);
    case LKDH_OP_STORE:
        return LkdhStoreOrRemove(Call, TRUE);
    case LKDH_OP_REMOVE:
        return LkdhStoreOrRemove(Call, FALSE);
    case LKDH_OP_CREATE:
        return LkdhCreate(Call);
    case LKDH_OP_STORE_COLLECTION:
        return LkdhStoreCollection(Call);
    case LKDH_OP_QUERY_DMF_DATA_SIZE:
        return LkdhQueryDmfDataSize(Call);
    default:
        return STATUS_INVALID_DEVICE_REQUEST;
    }
}

/* DMF_IoctlHandler has checked the administrator token and the minimum buffer sizes. */
_Use_decl_annotations_
NTSTATUS
LkdhControlIoctl(
    DMFMODULE DmfModule,
    WDFQUEUE Queue,
    WDFREQUEST Request,
    ULONG IoctlCode,
    VOID* InputBuffer,
    size_t InputBufferSize,
    VOID* OutputBuffer,
    size_t OutputBufferSize,
    size_t* BytesReturned
    )
{
    WDFDEVICE device = DMF_ParentDeviceGet(DmfModule);
    ULONG operation = (IoctlCode >> 2) & 0xFFF;
    LKDH_HEADER header;
    LKDH_CALL call;
    NTSTATUS ntStatus;

    UNREFERENCED_PARAMETER(Queue);
    UNREFERENCED_PARAMETER(Request);
    UNREFERENCED_PARAMETER(OutputBufferSize); /* DMF_IoctlHandler checked it against the table */

    *BytesReturned = 0;
    if (KeGetCurrentIrql() != PASSIVE_LEVEL)
    {
        return STATUS_INVALID_DEVICE_STATE; /* the requested IRQL must be the only one raised */
    }
    RtlCopyMemory(&header, InputBuffer, sizeof(header));
    ntStatus = LkdhCheckHeader(&header, operation, InputBufferSize);
    if (!NT_SUCCESS(ntStatus))
    {
        return ntStatus;
    }

    RtlZeroMemory(&call, sizeof(call));
    call.Context = DeviceContextGet(device);
    call.LiveKernelDump = DMF_FeatureModuleGetFromDevice(device, DmfFeature_LiveKernelDump);
    call.Input = (const UCHAR*)InputBuffer;
    call.InputSize = InputBufferSize;

    if (operation == LKDH_OP_INFO)
    {
        LKDH_INFO_REPLY info;
        LkdhInfo(device, call.LiveKernelDump, &info);
        info.Header.Magic = LKDH_REPLY_MAGIC;
        info.Header.Version = LKDH_PROTOCOL_VERSION;
        info.Header.Operation = (uint16_t)operation;
        info.Header.TotalSize = sizeof(info);
        RtlCopyMemory(OutputBuffer, &info, sizeof(info));
        *BytesReturned = sizeof(info);
        return STATUS_SUCCESS;
    }

    ntStatus = LkdhDispatch(&call, operation);
    if (!NT_SUCCESS(ntStatus))
    {
        return ntStatus;
    }
    /* Only now is the shared system buffer overwritten: the request has been fully consumed. */
    call.Reply.Header.Magic = LKDH_REPLY_MAGIC;
    call.Reply.Header.Version = LKDH_PROTOCOL_VERSION;
    call.Reply.Header.Operation = (uint16_t)operation;
    call.Reply.Header.TotalSize = sizeof(call.Reply);
    RtlCopyMemory(OutputBuffer, &call.Reply, sizeof(call.Reply));
    *BytesReturned = sizeof(call.Reply);
    return STATUS_SUCCESS;
}
