// Velocity WebOS enhancements; every page works without this script.
"use strict";
