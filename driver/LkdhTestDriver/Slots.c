/*
 * Slots.c - the table of pool blocks the harness allocated, addressed by slot id.
 *
 * The harness names buffers; it maps each name to a slot id and this table maps the slot to a
 * kernel address. Nothing here checks an offset or a length against the allocation: DMF does not
 * either, and scenarios about stale, short or foreign buffers depend on that (F11, F12, F27).
 */

#include "LkdhTestDriver.h"

static
POOL_FLAGS
LkdhPoolFlags(
    _In_ ULONG PoolType
    )
{
    switch (PoolType)
    {
    case LKDH_POOL_NON_PAGED_NX:
        return POOL_FLAG_NON_PAGED;
    case LKDH_POOL_PAGED:
        return POOL_FLAG_PAGED;
    case LKDH_POOL_NON_PAGED_EXECUTE:
        return POOL_FLAG_NON_PAGED_EXECUTE;
    default:
        return 0;
    }
}

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
    )
{
    POOL_FLAGS flags;
    UCHAR* block;
    NTSTATUS ntStatus;

    PAGED_CODE();

    *Address = NULL;
    flags = LkdhPoolFlags(PoolType);
    if (SlotId >= LKDH_MAX_SLOTS || flags == 0 || Size == 0 || Size > LKDH_MAX_ALLOCATION_SIZE)
    {
        return STATUS_INVALID_PARAMETER;
    }

    /* Zeroed by ExAllocatePool2; filled before anyone else can see the address. */
    block = (UCHAR*)ExAllocatePool2(flags, Size, LKDH_POOL_TAG);
    if (block == NULL)
    {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    if (PatternLength > 0)
    {
        for (ULONG index = 0; index < Size; index++)
        {
            block[index] = Pattern[index % PatternLength];
        }
    }

    WdfWaitLockAcquire(Context->SlotLock, NULL);
    if (Context->Slots[SlotId].Address != NULL)
    {
        ntStatus = STATUS_DUPLICATE_OBJECTID;
    }
    else
    {
        Context->Slots[SlotId].Address = block;
        Context->Slots[SlotId].Size = Size;
        ntStatus = STATUS_SUCCESS;
    }
    WdfWaitLockRelease(Context->SlotLock);

    if (!NT_SUCCESS(ntStatus))
    {
        ExFreePoolWithTag(block, LKDH_POOL_TAG);
        return ntStatus;
    }
    *Address = block;
    return STATUS_SUCCESS;
}

_IRQL_requires_max_(PASSIVE_LEVEL)
NTSTATUS
LkdhSlotFree(
    _In_ DEVICE_CONTEXT* Context,
    _In_ ULONG SlotId,
    _Out_ VOID** Address
    )
{
    VOID* block;

    PAGED_CODE();

    *Address = NULL;
    if (SlotId >= LKDH_MAX_SLOTS)
    {
        return STATUS_INVALID_PARAMETER;
    }
    WdfWaitLockAcquire(Context->SlotLock, NULL);
    block = Context->Slots[SlotId].Address;
    Context->Slots[SlotId].Address = NULL;
    Context->Slots[SlotId].Size = 0;
    WdfWaitLockRelease(Context->SlotLock);

    if (block == NULL)
    {
        return STATUS_NOT_FOUND;
    }
    /* The block may still be in DMF's ring: that stale pointer is a scenario, not a driver bug. */
    ExFreePoolWithTag(block, LKDH_POOL_TAG);
    *Address = block;
    return STATUS_SUCCESS;
}

_IRQL_requires_max_(PASSIVE_LEVEL)
NTSTATUS
LkdhSliceResolve(
    _In_ DEVICE_CONTEXT* Context,
    _In_ const LKDH_BUFFER_SLICE* Slice,
    _Out_ VOID** Address
    )
{
    ULONG_PTR base;

    PAGED_CODE();

    *Address = NULL;
    if (Slice->Reserved != 0)
    {
        return STATUS_INVALID_PARAMETER;
    }
    switch (Slice->Kind)
    {
    case LKDH_BUFFER_RAW:
        if (Slice->SlotId != 0)
        {
            return STATUS_INVALID_PARAMETER;
        }
        base = (ULONG_PTR)Slice->Address;
        break;
    case LKDH_BUFFER_SLOT:
        if (Slice->Address != 0 || Slice->SlotId >= LKDH_MAX_SLOTS)
        {
            return STATUS_INVALID_PARAMETER;
        }
        WdfWaitLockAcquire(Context->SlotLock, NULL);
        base = (ULONG_PTR)Context->Slots[Slice->SlotId].Address;
        WdfWaitLockRelease(Context->SlotLock);
        if (base == 0)
        {
            return STATUS_NOT_FOUND;
        }
        break;
    default:
        return STATUS_INVALID_PARAMETER;
    }
    /* Unsigned arithmetic: an offset that wraps is the harness's intent, not undefined behaviour. */
    *Address = (VOID*)(base + (ULONG_PTR)Slice->Offset);
    return STATUS_SUCCESS;
}

_IRQL_requires_max_(PASSIVE_LEVEL)
VOID
LkdhSlotsFreeAll(
    _In_ DEVICE_CONTEXT* Context
    )
{
    PAGED_CODE();

    for (ULONG slotId = 0; slotId < LKDH_MAX_SLOTS; slotId++)
    {
        if (Context->Slots[slotId].Address != NULL)
        {
            ExFreePoolWithTag(Context->Slots[slotId].Address, LKDH_POOL_TAG);
            Context->Slots[slotId].Address = NULL;
        }
    }
}
