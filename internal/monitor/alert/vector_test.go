package alert

const pyHMAC = "7330c9cf7d886970cbebbbb5494c04d2aeff06a990adb7d7a75abfeb0159d291"
