/*
 * Config.c - DMF_CONFIG_LiveKernelDump from the device's registry parameters (issue 11).
 *
 * The harness gives a scenario its module configuration by writing values under the device's
 * hardware key and restarting the device; EvtDriverDeviceAdd runs again and reads them here, before
 * DMF_ModulesCreate creates the LiveKernelDump feature module with them. The key is the one the
 * KMDF documentation names for per-device settings: WdfDeviceOpenRegistryKey(Device,
 * PLUGPLAY_REGKEY_DEVICE, KEY_READ, ...) opens the device's hardware key, "Device Parameters" under
 * the device instance (MicrosoftDocs windows-driver-docs-ddi, wdfdevice/nf-wdfdevice-
 * wdfdeviceopenregistrykey; windows-driver-docs install/opening-a-device-s-hardware-key.md). It is
 * per device, survives reboots, and user mode reaches it through SetupDiOpenDevRegKey(DIREG_DEV) or
 * CM_Open_DevNode_Key(CM_REGISTRY_HARDWARE), which is what the harness's device-parameters.ps1 uses.
 *
 * Every value is optional and validated; anything absent, of the wrong type or out of range keeps
 * the built-in default and is reported (INFO's ConfigFromRegistry / ConfigRejected), so a harness
 * can prove a setting took instead of trusting its write. PASSIVE_LEVEL only (the WdfRegistry*
 * methods require it).
 */

#include "LkdhConfig.h"

static const GUID LkdhDefaultSecondaryDataGuid = LKDH_SECONDARY_DATA_GUID_INIT;
static const GUID LkdhDefaultModuleInterfaceGuid = LKDH_MODULE_INTERFACE_GUID_INIT;
static const WCHAR LkdhDefaultReportType[] = LKDH_WIDE(LKDH_DEFAULT_REPORT_TYPE_TEXT);

VOID
LkdhSettingsDefaults(
    _Out_ LKDH_MODULE_SETTINGS* Settings
    )
{
    RtlZeroMemory(Settings, sizeof(*Settings));
    RtlCopyMemory(Settings->ReportType, LkdhDefaultReportType, sizeof(LkdhDefaultReportType));
    Settings->GuidDeviceInterface = LkdhDefaultModuleInterfaceGuid;
    Settings->GuidSecondaryData = LkdhDefaultSecondaryDataGuid;
    Settings->IncludeDmfDataInBugCheckTriageDump = FALSE;
    Settings->KeyStatus = STATUS_SUCCESS;
}

/* ReportType names a folder under %SystemRoot%\LiveKernelReports (F09): a Windows file name. */
BOOLEAN
LkdhReportTypeValid(
    _In_reads_(Count) const WCHAR* Characters,
    _In_ SIZE_T Count
    )
{
    static const WCHAR forbidden[] = L"\\/:*?\"<>|";
    SIZE_T index;
    SIZE_T scan;

    if (Count == 0 || Count > LKDH_REPORT_TYPE_MAX_CHARS)
    {
        return FALSE;
    }
    for (index = 0; index < Count; index++)
    {
        if (Characters[index] < 0x20)
        {
            return FALSE;
        }
        for (scan = 0; scan < ARRAYSIZE(forbidden) - 1; scan++)
        {
            if (Characters[index] == forbidden[scan])
            {
                return FALSE;
            }
        }
    }
    return (BOOLEAN)(Characters[Count - 1] != L'.' && Characters[Count - 1] != L' ');
}

/* A REG_SZ value into Buffer (Capacity WCHARs, NUL terminated), without its trailing NULs.
 * STATUS_OBJECT_NAME_NOT_FOUND: absent; any other failure: present but unusable (wrong type, too
 * long: WdfRegistryQueryUnicodeString's STATUS_OBJECT_TYPE_MISMATCH / STATUS_BUFFER_OVERFLOW). */
static
NTSTATUS
LkdhQueryString(
    _In_ WDFKEY Key,
    _In_ PCWSTR Name,
    _Out_writes_(Capacity) WCHAR* Buffer,
    _In_ USHORT Capacity,
    _Out_ SIZE_T* Count
    )
{
    UNICODE_STRING valueName;
    UNICODE_STRING value;
    NTSTATUS ntStatus;
    SIZE_T count;

    *Count = 0;
    RtlZeroMemory(Buffer, Capacity * sizeof(WCHAR));
    RtlInitUnicodeString(&valueName, Name);
    value.Buffer = Buffer;
    value.Length = 0;
    value.MaximumLength = (USHORT)((Capacity - 1) * sizeof(WCHAR)); /* keep room for our own NUL */
    ntStatus = WdfRegistryQueryUnicodeString(Key, &valueName, NULL, &value);
    if (!NT_SUCCESS(ntStatus))
    {
        return ntStatus;
    }
    count = value.Length / sizeof(WCHAR);
    while (count > 0 && Buffer[count - 1] == L'\0')
    {
        count--; /* REG_SZ data usually carries its terminator */
    }
    Buffer[count] = L'\0';
    *Count = count;
    return STATUS_SUCCESS;
}

static
VOID
LkdhReadReportType(
    _In_ WDFKEY Key,
    _Inout_ LKDH_MODULE_SETTINGS* Settings
    )
{
    WCHAR text[LKDH_REPORT_TYPE_MAX_CHARS + 2]; /* one more than allowed, to see a longer value */
    SIZE_T count;
    NTSTATUS ntStatus;

    ntStatus = LkdhQueryString(Key, LKDH_REG_REPORT_TYPE, text, ARRAYSIZE(text), &count);
    if (ntStatus == STATUS_OBJECT_NAME_NOT_FOUND)
    {
        return;
    }
    if (!NT_SUCCESS(ntStatus) || !LkdhReportTypeValid(text, count))
    {
        Settings->Rejected |= LKDH_CONFIG_REPORT_TYPE;
        return;
    }
    RtlZeroMemory(Settings->ReportType, sizeof(Settings->ReportType));
    RtlCopyMemory(Settings->ReportType, text, count * sizeof(WCHAR));
    Settings->FromRegistry |= LKDH_CONFIG_REPORT_TYPE;
}

static
VOID
LkdhReadGuid(
    _In_ WDFKEY Key,
    _In_ PCWSTR Name,
    _In_ ULONG Bit,
    _Inout_ GUID* Guid,
    _Inout_ LKDH_MODULE_SETTINGS* Settings
    )
{
    WCHAR text[LKDH_GUID_TEXT_CHARS + 2];
    UNICODE_STRING guidText;
    GUID parsed;
    SIZE_T count;
    NTSTATUS ntStatus;

    ntStatus = LkdhQueryString(Key, Name, text, ARRAYSIZE(text), &count);
    if (ntStatus == STATUS_OBJECT_NAME_NOT_FOUND)
    {
        return;
    }
    if (NT_SUCCESS(ntStatus) && count == LKDH_GUID_TEXT_CHARS)
    {
        RtlInitUnicodeString(&guidText, text);
        ntStatus = RtlGUIDFromString(&guidText, &parsed);
    }
    else
    {
        ntStatus = STATUS_INVALID_PARAMETER;
    }
    if (!NT_SUCCESS(ntStatus))
    {
        Settings->Rejected |= Bit;
        return;
    }
    *Guid = parsed;
    Settings->FromRegistry |= Bit;
}

static
VOID
LkdhReadIncludeDmfData(
    _In_ WDFKEY Key,
    _Inout_ LKDH_MODULE_SETTINGS* Settings
    )
{
    UNICODE_STRING valueName;
    ULONG value = 0;
    NTSTATUS ntStatus;

    RtlInitUnicodeString(&valueName, LKDH_REG_INCLUDE_DMF_DATA);
    ntStatus = WdfRegistryQueryULong(Key, &valueName, &value);
    if (ntStatus == STATUS_OBJECT_NAME_NOT_FOUND)
    {
        return;
    }
    if (!NT_SUCCESS(ntStatus) || value > 1)
    {
        Settings->Rejected |= LKDH_CONFIG_INCLUDE_DMF_DATA;
        return;
    }
    Settings->IncludeDmfDataInBugCheckTriageDump = (BOOLEAN)value;
    Settings->FromRegistry |= LKDH_CONFIG_INCLUDE_DMF_DATA;
}

_Use_decl_annotations_
VOID
LkdhSettingsRead(
    WDFDEVICE Device,
    LKDH_MODULE_SETTINGS* Settings
    )
{
    WDFKEY key = NULL;
    NTSTATUS ntStatus;

    PAGED_CODE();

    LkdhSettingsDefaults(Settings);
    ntStatus = WdfDeviceOpenRegistryKey(Device, PLUGPLAY_REGKEY_DEVICE, KEY_READ, WDF_NO_OBJECT_ATTRIBUTES, &key);
    Settings->KeyStatus = ntStatus;
    if (!NT_SUCCESS(ntStatus))
    {
        return; /* no hardware key yet: every value keeps its default */
    }
    LkdhReadReportType(key, Settings);
    LkdhReadGuid(key, LKDH_REG_GUID_DEVICE_INTERFACE, LKDH_CONFIG_GUID_DEVICE_INTERFACE,
                 &Settings->GuidDeviceInterface, Settings);
    LkdhReadGuid(key, LKDH_REG_GUID_SECONDARY_DATA, LKDH_CONFIG_GUID_SECONDARY_DATA,
                 &Settings->GuidSecondaryData, Settings);
    LkdhReadIncludeDmfData(key, Settings);
    WdfRegistryClose(key);
}
