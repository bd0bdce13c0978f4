/*
 * DmfInternals.c - the only file of LkdhTestDriver that reads DMF's private structures.
 *
 * Needs Dmf\Framework on the include path (DmfIncludeInternal.h). See DmfInternals.h for why.
 * Checked against DMF commit bfac434: DmfLiveKernelDump.c stores
 * (ULONG_PTR)ModuleCollectionHandle->ModuleCollectionHandleMemory, which is the DMFCOLLECTION that
 * DMF keeps in the device's DMF_DEVICE_CONTEXT.DmfCollection; the module reads its config through
 * DMF_OBJECT.ModuleConfig (DMF_CONFIG_GET).
 */

#include "DmfIncludeInternal.h"

#include "DmfInternals.h"

_IRQL_requires_max_(PASSIVE_LEVEL)
VOID
LkdhDmfInternalsDescribe(
    _In_ WDFDEVICE Device,
    _In_ DMFMODULE LiveKernelDumpModule,
    _Inout_ LKDH_INFO_REPLY* Reply
    )
{
    DMF_DEVICE_CONTEXT* dmfDeviceContext;
    DMF_OBJECT* dmfObject;
    const DMF_CONFIG_LiveKernelDump* moduleConfig;
    size_t reportTypeBytes;

    PAGED_CODE();

    dmfDeviceContext = DmfDeviceContextGet(Device);
    Reply->DmfCollection = (dmfDeviceContext == NULL) ? 0 : (uint64_t)(ULONG_PTR)dmfDeviceContext->DmfCollection;

    dmfObject = DMF_ModuleToObject(LiveKernelDumpModule);
    moduleConfig = (const DMF_CONFIG_LiveKernelDump*)dmfObject->ModuleConfig;
    if (moduleConfig == NULL)
    {
        return;
    }

    C_ASSERT(sizeof(moduleConfig->GuidSecondaryData) == sizeof(Reply->GuidSecondaryData));
    C_ASSERT(sizeof(moduleConfig->GuidDeviceInterface) == sizeof(Reply->GuidDeviceInterface));
    RtlCopyMemory(Reply->GuidSecondaryData, &moduleConfig->GuidSecondaryData, sizeof(Reply->GuidSecondaryData));
    RtlCopyMemory(Reply->GuidDeviceInterface, &moduleConfig->GuidDeviceInterface, sizeof(Reply->GuidDeviceInterface));
    Reply->IncludeDmfDataInBugCheckTriageDump = moduleConfig->IncludeDmfDataInBugCheckTriageDump ? 1u : 0u;

    /* The whole field as DMF declares it (12 WCHARs at bfac434, 16 in the documentation), NUL padded. */
    reportTypeBytes = min(sizeof(moduleConfig->ReportType), sizeof(Reply->ReportType));
    RtlZeroMemory(Reply->ReportType, sizeof(Reply->ReportType));
    RtlCopyMemory(Reply->ReportType, moduleConfig->ReportType, reportTypeBytes);
}
