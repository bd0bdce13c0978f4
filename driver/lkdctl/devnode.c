/*
 * devnode.c - `lkdctl --install-device INF HARDWARE_ID`: create the root-enumerated test device
 * and install the driver package on it, the way devcon's `install` command does.
 *
 * Why lkdctl does this: `pnputil /add-driver X.inf /install` only stages the package and updates
 * devices that already exist (it exits 259, "no devices match", on a VM that has none); a
 * root-enumerated device such as Root\LkdhTestDriver exists only once someone creates its devnode.
 * The WDK's devcon/devgen can, but they are not redistributable with the package; these are the
 * documented calls devcon makes (MicrosoftDocs "Installing a non-PnP driver / root-enumerated
 * device", SetupDiCreateDeviceInfo, DIF_REGISTERDEVICE, UpdateDriverForPlugAndPlayDevices):
 *
 *   1. SetupDiGetINFClass            the INF's class name and class GUID
 *   2. an existing ROOT devnode whose hardware id matches? then skip 3-4 (idempotent: a second run
 *      never creates a second device)
 *   3. SetupDiCreateDeviceInfo       a new devnode ROOT\<class>\NNNN (DICD_GENERATE_ID)
 *      SetupDiSetDeviceRegistryProperty(SPDRP_HARDWAREID)
 *      SetupDiBuildDriverInfoList(DI_ENUMSINGLEINF)   the INF must offer a driver for that id,
 *      else nothing is registered (a typo in the hardware id leaves no orphan devnode behind)
 *   4. SetupDiCallClassInstaller(DIF_REGISTERDEVICE)   makes it a real, persistent devnode
 *   5. UpdateDriverForPlugAndPlayDevices(INSTALLFLAG_FORCE)   installs the INF's driver on every
 *      device with that hardware id and starts it; says whether a reboot is needed
 *
 * A devnode created in 3-4 is removed again (DIF_REMOVE) when 5 fails, so a retry starts clean.
 * Output, one JSON line:
 *   {"device":"created","instance_id":"ROOT\\SYSTEM\\0000","matching":1,"reboot_required":false}
 *   {"error":"device_install_failed","step":"UpdateDriverForPlugAndPlayDevices","win32_error":3758096928}
 * Links setupapi and newdev.
 */

#include "devnode.h"

#include <cfgmgr32.h> /* MAX_CLASS_NAME_LEN */
#include <newdev.h>
#include <setupapi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "lkdh_control.h"

#define INSTANCE_ID_CHARS 512
#define HARDWARE_ID_BYTES 4096

void lkdctl_json_wide_string(const wchar_t *text);

static int fail_step(const char *step, DWORD error)
{
    printf("{\"error\":\"device_install_failed\",\"step\":\"%s\",\"win32_error\":%lu}\n", step,
           (unsigned long)error);
    return LKDCTL_EXIT_DEVICE_INSTALL_FAILED;
}

/* Does this REG_MULTI_SZ list hold `wanted` (hardware ids compare case-insensitively)? */
static int multi_sz_contains(const wchar_t *list, size_t chars, const wchar_t *wanted)
{
    size_t at = 0;
    while (at < chars && list[at] != L'\0') {
        if (_wcsicmp(list + at, wanted) == 0) {
            return 1;
        }
        at += wcslen(list + at) + 1;
    }
    return 0;
}

/* Count the ROOT devnodes (present or not: a phantom still owns its instance id) with this
 * hardware id, and keep the first one's instance id. */
static int count_root_devices(const wchar_t *hardware_id, wchar_t *first_instance, DWORD *count)
{
    SP_DEVINFO_DATA data;
    HDEVINFO set = SetupDiGetClassDevsW(NULL, L"ROOT", NULL, DIGCF_ALLCLASSES);
    *count = 0;
    if (set == INVALID_HANDLE_VALUE) {
        return 0;
    }
    data.cbSize = sizeof(data);
    for (DWORD index = 0; SetupDiEnumDeviceInfo(set, index, &data); index++) {
        wchar_t ids[HARDWARE_ID_BYTES / sizeof(wchar_t)];
        DWORD size = 0;
        memset(ids, 0, sizeof(ids));
        if (!SetupDiGetDeviceRegistryPropertyW(set, &data, SPDRP_HARDWAREID, NULL, (PBYTE)ids,
                                               (DWORD)sizeof(ids) - 2 * sizeof(wchar_t), &size)) {
            continue;
        }
        if (multi_sz_contains(ids, sizeof(ids) / sizeof(ids[0]), hardware_id)) {
            if (*count == 0 &&
                !SetupDiGetDeviceInstanceIdW(set, &data, first_instance, INSTANCE_ID_CHARS, NULL)) {
                first_instance[0] = L'\0';
            }
            (*count)++;
        }
    }
    SetupDiDestroyDeviceInfoList(set);
    return 1;
}

/* Does the INF offer a driver for this element's hardware id? Asked of Setup itself
 * (SetupDiBuildDriverInfoList restricted to this one INF, DI_ENUMSINGLEINF), so a hardware id the
 * INF does not list is refused before any devnode is registered. */
static int inf_has_driver(HDEVINFO set, SP_DEVINFO_DATA *data, const wchar_t *inf)
{
    SP_DEVINSTALL_PARAMS_W params;
    SP_DRVINFO_DATA_W driver;
    params.cbSize = sizeof(params);
    if (!SetupDiGetDeviceInstallParamsW(set, data, &params)) {
        return 0;
    }
    params.Flags |= DI_ENUMSINGLEINF;
    if (wcslen(inf) >= sizeof(params.DriverPath) / sizeof(params.DriverPath[0])) {
        return 0;
    }
    wcscpy(params.DriverPath, inf);
    if (!SetupDiSetDeviceInstallParamsW(set, data, &params) ||
        !SetupDiBuildDriverInfoList(set, data, SPDIT_COMPATDRIVER)) {
        return 0;
    }
    driver.cbSize = sizeof(driver);
    return SetupDiEnumDriverInfoW(set, data, SPDIT_COMPATDRIVER, 0, &driver) ? 1 : 0;
}

/* Steps 3-4: a new registered devnode with `hardware_id`; its instance id in `instance`. */
static int create_devnode(const wchar_t *inf, const wchar_t *hardware_id, wchar_t *instance, HDEVINFO *set_out,
                          SP_DEVINFO_DATA *data)
{
    GUID class_guid;
    wchar_t class_name[MAX_CLASS_NAME_LEN];
    BYTE ids[HARDWARE_ID_BYTES];
    size_t id_bytes = (wcslen(hardware_id) + 2) * sizeof(wchar_t); /* the id, its NUL, the list's NUL */
    HDEVINFO set;
    if (id_bytes > sizeof(ids)) {
        return fail_step("hardware_id_too_long", ERROR_INVALID_PARAMETER);
    }
    if (!SetupDiGetINFClassW(inf, &class_guid, class_name, MAX_CLASS_NAME_LEN, NULL)) {
        return fail_step("SetupDiGetINFClass", GetLastError());
    }
    set = SetupDiCreateDeviceInfoList(&class_guid, NULL);
    if (set == INVALID_HANDLE_VALUE) {
        return fail_step("SetupDiCreateDeviceInfoList", GetLastError());
    }
    data->cbSize = sizeof(*data);
    if (!SetupDiCreateDeviceInfoW(set, class_name, &class_guid, NULL, NULL, DICD_GENERATE_ID, data)) {
        DWORD error = GetLastError();
        SetupDiDestroyDeviceInfoList(set);
        return fail_step("SetupDiCreateDeviceInfo", error);
    }
    memset(ids, 0, sizeof(ids));
    memcpy(ids, hardware_id, wcslen(hardware_id) * sizeof(wchar_t));
    if (!SetupDiSetDeviceRegistryPropertyW(set, data, SPDRP_HARDWAREID, ids, (DWORD)id_bytes)) {
        DWORD error = GetLastError();
        SetupDiDestroyDeviceInfoList(set);
        return fail_step("SetupDiSetDeviceRegistryProperty", error);
    }
    if (!inf_has_driver(set, data, inf)) { /* the element was never registered: nothing persists */
        DWORD error = GetLastError();
        SetupDiDestroyDeviceInfoList(set);
        return fail_step("no_driver_for_hardware_id", error);
    }
    if (!SetupDiCallClassInstaller(DIF_REGISTERDEVICE, set, data)) {
        DWORD error = GetLastError();
        SetupDiDestroyDeviceInfoList(set);
        return fail_step("DIF_REGISTERDEVICE", error);
    }
    if (!SetupDiGetDeviceInstanceIdW(set, data, instance, INSTANCE_ID_CHARS, NULL)) {
        instance[0] = L'\0';
    }
    *set_out = set;
    return LKDCTL_EXIT_OK;
}

int lkdctl_install_device(const wchar_t *inf_argument, const wchar_t *hardware_id)
{
    wchar_t inf[MAX_PATH];
    wchar_t instance[INSTANCE_ID_CHARS];
    HDEVINFO created = INVALID_HANDLE_VALUE;
    SP_DEVINFO_DATA created_data;
    DWORD matching = 0;
    BOOL reboot = FALSE;
    int result;
    DWORD length = GetFullPathNameW(inf_argument, MAX_PATH, inf, NULL);
    if (length == 0 || length >= MAX_PATH || GetFileAttributesW(inf) == INVALID_FILE_ATTRIBUTES) {
        return fail_step("inf_not_found", length == 0 ? GetLastError() : ERROR_FILE_NOT_FOUND);
    }
    instance[0] = L'\0';
    if (!count_root_devices(hardware_id, instance, &matching)) {
        return fail_step("SetupDiGetClassDevs", GetLastError());
    }
    if (matching == 0) {
        result = create_devnode(inf, hardware_id, instance, &created, &created_data);
        if (result != LKDCTL_EXIT_OK) {
            return result;
        }
    }
    if (!UpdateDriverForPlugAndPlayDevicesW(NULL, hardware_id, inf, INSTALLFLAG_FORCE, &reboot)) {
        DWORD error = GetLastError();
        if (created != INVALID_HANDLE_VALUE) { /* leave no devnode without a driver behind */
            SetupDiCallClassInstaller(DIF_REMOVE, created, &created_data);
            SetupDiDestroyDeviceInfoList(created);
        }
        return fail_step("UpdateDriverForPlugAndPlayDevices", error);
    }
    if (created != INVALID_HANDLE_VALUE) {
        SetupDiDestroyDeviceInfoList(created);
    }
    printf("{\"device\":\"%s\",\"instance_id\":", matching == 0 ? "created" : "existing");
    lkdctl_json_wide_string(instance);
    printf(",\"matching\":%lu,\"reboot_required\":%s}\n", (unsigned long)(matching == 0 ? 1 : matching),
           reboot ? "true" : "false");
    return LKDCTL_EXIT_OK;
}
