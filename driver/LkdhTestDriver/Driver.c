/*
 * Driver.c - LkdhTestDriver: a root-enumerated KMDF driver built on DMF with the LiveKernelDump
 * feature enabled the way DMF_FACTS.md ("Enabling it in a driver") describes, plus one
 * DMF_IoctlHandler that exposes the control interface of driver/include/lkdh_control.h.
 *
 * Device interfaces on the one device:
 *   ...480002  the module's own (GuidDeviceInterface): IOCTL_LIVEKERNELDUMP_CREATE (F23)
 *   ...480003  the harness's control interface (Control.c)
 * Secondary data is tagged ...480001 (GuidSecondaryData).
 * Those two GUIDs, ReportType and IncludeDmfDataInBugCheckTriageDump are the defaults; the device's
 * registry parameters override them at every device start (Config.c).
 */

#include "LkdhTestDriver.h"

DRIVER_INITIALIZE DriverEntry;
EVT_WDF_DRIVER_DEVICE_ADD LkdhEvtDeviceAdd;
EVT_WDF_OBJECT_CONTEXT_CLEANUP LkdhEvtDeviceCleanup;
EVT_DMF_DEVICE_MODULES_ADD LkdhDmfModulesAdd;

static const GUID LkdhControlInterfaceGuid = LKDH_CONTROL_INTERFACE_GUID_INIT;

#pragma code_seg("INIT")
_Use_decl_annotations_
NTSTATUS
DriverEntry(
    PDRIVER_OBJECT DriverObject,
    PUNICODE_STRING RegistryPath
    )
{
    WDF_DRIVER_CONFIG config;

    WDF_DRIVER_CONFIG_INIT(&config, LkdhEvtDeviceAdd);
    config.DriverPoolTag = LKDH_POOL_TAG;
    return WdfDriverCreate(DriverObject, RegistryPath, WDF_NO_OBJECT_ATTRIBUTES, &config, WDF_NO_HANDLE);
}
#pragma code_seg()

/* DMF_LiveKernelDump_CONFIG_INIT zero-fills; the fields below are all the module reads (F05, F21-F23). */
static
VOID
LkdhLiveKernelDumpConfigure(
    _In_ const LKDH_MODULE_SETTINGS* Settings,
    _Out_ DMF_CONFIG_LiveKernelDump* Config
    )
{
    DMF_LiveKernelDump_CONFIG_INIT(Config);
    Config->GuidDeviceInterface = Settings->GuidDeviceInterface;
    Config->GuidSecondaryData = Settings->GuidSecondaryData;
    Config->IncludeDmfDataInBugCheckTriageDump = Settings->IncludeDmfDataInBugCheckTriageDump;
    /* Truncates to the field's size (12 WCHARs at bfac434) and terminates: STATUS_BUFFER_OVERFLOW is
     * expected and ignored, because the module's real capacity is what the harness must observe (F05). */
    (VOID)RtlStringCchCopyW(Config->ReportType, ARRAYSIZE(Config->ReportType), Settings->ReportType);
}

#pragma code_seg("PAGE")
_Use_decl_annotations_
NTSTATUS
LkdhEvtDeviceAdd(
    WDFDRIVER Driver,
    PWDFDEVICE_INIT DeviceInit
    )
{
    PDMFDEVICE_INIT dmfDeviceInit;
    DMF_EVENT_CALLBACKS dmfCallbacks;
    DMF_CONFIG_LiveKernelDump liveKernelDumpConfig;
    WDF_OBJECT_ATTRIBUTES attributes;
    WDFDEVICE device;
    DEVICE_CONTEXT* context;
    NTSTATUS ntStatus;

    UNREFERENCED_PARAMETER(Driver);

    PAGED_CODE();

    dmfDeviceInit = DMF_DmfDeviceInitAllocate(DeviceInit);
    DMF_DmfDeviceInitHookPnpPowerEventCallbacks(dmfDeviceInit, NULL);
    DMF_DmfDeviceInitHookFileObjectConfig(dmfDeviceInit, NULL);
    DMF_DmfDeviceInitHookPowerPolicyEventCallbacks(dmfDeviceInit, NULL);

    WdfDeviceInitSetDeviceType(DeviceInit, FILE_DEVICE_UNKNOWN);
    WdfDeviceInitSetExclusive(DeviceInit, FALSE);
    WdfDeviceInitSetIoType(DeviceInit, WdfDeviceIoBuffered);

    WDF_OBJECT_ATTRIBUTES_INIT_CONTEXT_TYPE(&attributes, DEVICE_CONTEXT);
    /* I/O callbacks at PASSIVE_LEVEL, so the IRQL a request asks for is the only one raised. */
    attributes.ExecutionLevel = WdfExecutionLevelPassive;
    attributes.EvtCleanupCallback = LkdhEvtDeviceCleanup;
    ntStatus = WdfDeviceCreate(&DeviceInit, &attributes, &device);
    if (!NT_SUCCESS(ntStatus))
    {
        goto Exit;
    }

    context = DeviceContextGet(device);
    WDF_OBJECT_ATTRIBUTES_INIT(&attributes);
    attributes.ParentObject = device;
    ntStatus = WdfWaitLockCreate(&attributes, &context->SlotLock);
    if (!NT_SUCCESS(ntStatus))
    {
        goto Exit;
    }

    /* The device's registry parameters, read at every start: a restart of the device applies new ones. */
    LkdhSettingsRead(device, &context->Settings);
    LkdhLiveKernelDumpConfigure(&context->Settings, &liveKernelDumpConfig);
    DMF_DmfDeviceInitSetLiveKernelDumpConfig(dmfDeviceInit, &liveKernelDumpConfig);

    DMF_EVENT_CALLBACKS_INIT(&dmfCallbacks);
    dmfCallbacks.EvtDmfDeviceModulesAdd = LkdhDmfModulesAdd;
    DMF_DmfDeviceInitSetEventCallbacks(dmfDeviceInit, &dmfCallbacks);

    ntStatus = DMF_ModulesCreate(device, &dmfDeviceInit);

Exit:

    if (dmfDeviceInit != NULL)
    {
        DMF_DmfDeviceInitFree(&dmfDeviceInit);
    }
    return ntStatus;
}
#pragma code_seg()

#pragma code_seg("PAGE")
_Use_decl_annotations_
VOID
LkdhDmfModulesAdd(
    WDFDEVICE Device,
    PDMFMODULE_INIT DmfModuleInit
    )
{
    DMF_MODULE_ATTRIBUTES moduleAttributes;
    DMF_CONFIG_IoctlHandler ioctlHandlerConfig;

    UNREFERENCED_PARAMETER(Device);

    PAGED_CODE();

    DMF_CONFIG_IoctlHandler_AND_ATTRIBUTES_INIT(&ioctlHandlerConfig, &moduleAttributes);
    ioctlHandlerConfig.DeviceInterfaceGuid = LkdhControlInterfaceGuid;
    ioctlHandlerConfig.AccessModeFilter = IoctlHandler_AccessModeFilterAdministratorOnlyPerIoctl;
    ioctlHandlerConfig.IoctlRecords = LkdhControlIoctls;
    ioctlHandlerConfig.IoctlRecordCount = LkdhControlIoctlCount;
    moduleAttributes.ClientModuleInstanceName = "LkdhControl";
    DMF_DmfModuleAdd(DmfModuleInit, &moduleAttributes, WDF_NO_OBJECT_ATTRIBUTES, NULL);
}
#pragma code_seg()

#pragma code_seg("PAGE")
_Use_decl_annotations_
VOID
LkdhEvtDeviceCleanup(
    WDFOBJECT Object
    )
{
    PAGED_CODE();

    /* DMF's modules, children of the device, are gone by now: no ring entry can be read again. */
    LkdhSlotsFreeAll(DeviceContextGet((WDFDEVICE)Object));
}
#pragma code_seg()
